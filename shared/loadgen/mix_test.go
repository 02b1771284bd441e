package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/events"
)

// TestSequenceDealsExactShares: a mix is dealt exactly, so a run's counts can be checked
// one for one, and evenly, so that a run cut short by its duration keeps the mix.
func TestSequenceDealsExactShares(t *testing.T) {
	s := newSequence([]float64{0.7, 0.2, 0.1})
	var got [3]int
	for n := 1; n <= 60; n++ {
		got[s.next()]++
		for i, w := range []float64{0.7, 0.2, 0.1} {
			if d := float64(got[i]) - w*float64(n); d > 1 || d < -1 {
				t.Fatalf("after %d picks choice %d has %d, want within 1 of %.1f", n, i, got[i], w*float64(n))
			}
		}
	}
	if got != [3]int{42, 12, 6} {
		t.Errorf("60 picks of 70/20/10 = %v, want [42 12 6]", got)
	}
	// A zero weight is never picked.
	z := newSequence([]float64{0, 1})
	for range 10 {
		if z.next() != 1 {
			t.Fatal("picked a choice of weight 0")
		}
	}
}

func TestParseRegions(t *testing.T) {
	got, err := ParseRegions("europe=50, asia ,americas=0.5")
	if err != nil {
		t.Fatal(err)
	}
	want := []RegionWeight{{events.RegionEurope, 50}, {events.RegionAsia, 1}, {events.RegionAmericas, 0.5}}
	if len(got) != len(want) {
		t.Fatalf("ParseRegions = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("region %d = %v, want %v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"", "mars=1", "europe=-1", "europe=x"} {
		if _, err := ParseRegions(bad); err == nil {
			t.Errorf("ParseRegions(%q) accepted it", bad)
		}
	}
}

// TestPhonesAreTextable: every number the generator writes passes the rule POST /orders
// and the sms service apply.
func TestPhonesAreTextable(t *testing.T) {
	for _, r := range events.Regions {
		for _, n := range []int{0, 7, 99, 12345} {
			c := events.Customer{Name: "Load customer load-01", Email: "load-01@load.example.com", Phone: Phone(r, n)}
			if err := c.Validate(); err != nil {
				t.Errorf("%s #%d: %q: %v", r, n, c.Phone, err)
			}
		}
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p50, p99 := percentiles(d)
	if p50 != 50*time.Millisecond || p99 != 99*time.Millisecond {
		t.Errorf("percentiles of 1..100 ms = %s, %s; want 50ms, 99ms", p50, p99)
	}
	if p50, p99 := percentiles(nil); p50 != 0 || p99 != 0 {
		t.Errorf("percentiles of nothing = %s, %s", p50, p99)
	}
}

func TestValidateRefusesARunWithoutEnd(t *testing.T) {
	cfg := Config{OrderURL: "http://o", InventoryURL: "http://i", Customers: []string{"load-01"}}.withDefaults()
	cfg.Token = func(context.Context, string) (string, error) { return "", nil }
	if err := cfg.Validate(); err == nil {
		t.Error("a run with neither count nor duration was accepted")
	}
	cfg.Count = 10
	if err := cfg.Validate(); err != nil {
		t.Errorf("a valid run refused: %v", err)
	}
	cfg.OutOfStock, cfg.Cancel = 0.6, 0.5
	if err := cfg.Validate(); err == nil {
		t.Error("shares adding up to more than 1 were accepted")
	}
}
