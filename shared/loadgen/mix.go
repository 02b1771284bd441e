package loadgen

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/warrenhq/warren/shared/events"
)

// Kind is what the generator means an order to become.
type Kind int

// The kinds of order of a mix.
const (
	// KindInStock names in-stock SKUs: inventory must confirm it.
	KindInStock Kind = iota
	// KindOutOfStock names the out-of-stock SKU: inventory must reject it.
	KindOutOfStock
	// KindCancel is an in-stock order the generator cancels once it is confirmed.
	KindCancel
)

// String names the kind as the summary does.
func (k Kind) String() string {
	switch k {
	case KindInStock:
		return "in-stock"
	case KindOutOfStock:
		return "out-of-stock"
	case KindCancel:
		return "cancel"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Want is the status an order of kind k must end in.
func (k Kind) Want() string {
	switch k {
	case KindOutOfStock:
		return StatusRejected
	case KindCancel:
		return StatusCancelled
	}
	return StatusConfirmed
}

// sequence deals out choices in proportion to their weights, exactly rather than at
// random: after n picks, each choice has been picked within one of n*weight/total times.
// A run of 60 orders with 20% out of stock therefore has 12 of them, not "about 12",
// which is what lets a test check every count against the system's.
type sequence struct {
	weights []float64
	total   float64
	picked  []float64
	n       float64
}

func newSequence(weights []float64) *sequence {
	s := &sequence{weights: weights, picked: make([]float64, len(weights))}
	for _, w := range weights {
		s.total += w
	}
	return s
}

// next returns the index of the choice furthest behind its share (the first on a tie).
func (s *sequence) next() int {
	s.n++
	best, bestDebt := -1, 0.0
	for i, w := range s.weights {
		if w <= 0 {
			continue
		}
		// A small tolerance keeps 60*0.2 = 12.000000000000002 from tipping a tie.
		debt := s.n*w/s.total - s.picked[i]
		if debt > bestDebt+1e-9 || best == -1 {
			best, bestDebt = i, debt
		}
	}
	s.picked[best]++
	return best
}

// RegionWeight is one region of a mix and its share of the orders.
type RegionWeight struct {
	Region events.Region
	Weight float64
}

// ParseRegions parses a list such as "europe=50,asia=30,americas=20" (weights are relative;
// a region without "=w" weighs 1).
func ParseRegions(list string) ([]RegionWeight, error) {
	var out []RegionWeight
	for _, part := range strings.Split(list, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, weight, hasWeight := strings.Cut(part, "=")
		rw := RegionWeight{Region: events.Region(strings.TrimSpace(name)), Weight: 1}
		if !rw.Region.Valid() {
			return nil, fmt.Errorf("regions: unknown region %q (one of %v)", rw.Region, events.Regions)
		}
		if hasWeight {
			w, err := strconv.ParseFloat(strings.TrimSpace(weight), 64)
			if err != nil || w < 0 {
				return nil, fmt.Errorf("regions: weight of %s: want a number >= 0, got %q", rw.Region, weight)
			}
			rw.Weight = w
		}
		out = append(out, rw)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("regions: none in %q", list)
	}
	return out, nil
}

// Phone is the n-th load customer's number in region, from the ranges set aside for
// fiction where a country has one (the UK's 020 7946 0xxx, North America's 555-01xx): the
// sms service texts by region, and a text that ever left the demo should reach no one.
func Phone(region events.Region, n int) string {
	switch region {
	case events.RegionEurope:
		return fmt.Sprintf("+44 20 7946 0%03d", n%1000)
	case events.RegionAmericas:
		return fmt.Sprintf("+1 555 01%02d", n%100)
	default:
		return fmt.Sprintf("+81 3 5555 %04d", n%10000)
	}
}
