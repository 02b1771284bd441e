package stats

import (
	"testing"

	"github.com/warrenhq/warren/shared/events"
)

func TestStatusPrecedence(t *testing.T) {
	tests := []struct {
		current, incoming, want Status
	}{
		{"", StatusPending, StatusPending},
		{"", StatusConfirmed, StatusConfirmed},
		{StatusPending, StatusConfirmed, StatusConfirmed},
		{StatusConfirmed, StatusPending, StatusConfirmed}, // a late OrderPlaced
		{StatusRejected, StatusPending, StatusRejected},
		{StatusPending, StatusRejected, StatusRejected},
		{StatusConfirmed, StatusCancelled, StatusCancelled},
		{StatusCancelled, StatusConfirmed, StatusCancelled}, // cancelled wins
		{StatusCancelled, StatusPending, StatusCancelled},
		{StatusCancelled, StatusRejected, StatusCancelled},
		{StatusConfirmed, StatusRejected, StatusRejected}, // never overstate revenue
		{StatusRejected, StatusConfirmed, StatusRejected},
		{StatusConfirmed, StatusConfirmed, StatusConfirmed},
	}
	for _, tt := range tests {
		if got := (Order{Status: tt.current}).Apply(Update{Status: tt.incoming}).Status; got != tt.want {
			t.Errorf("%q then %q = %q, want %q", tt.current, tt.incoming, got, tt.want)
		}
	}
}

func TestApplyIsOrderIndependent(t *testing.T) {
	total := int64(1250)
	updates := []Update{
		{Status: StatusConfirmed, Region: events.RegionAsia},
		{Status: StatusPending, Region: events.RegionAsia, TotalCents: &total},
		{Status: StatusCancelled},
	}
	want := Order{Region: events.RegionAsia, Status: StatusCancelled, TotalCents: &total}
	for _, perm := range [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		var o Order
		for _, i := range perm {
			o = o.Apply(updates[i])
		}
		if o.Region != want.Region || o.Status != want.Status || o.TotalCents == nil || *o.TotalCents != total {
			t.Errorf("order %v: got %+v", perm, o)
		}
	}
}

func TestApplyKeepsFirstTotal(t *testing.T) {
	first, second := int64(100), int64(999)
	o := Order{}.Apply(Update{Status: StatusPending, TotalCents: &first})
	o = o.Apply(Update{Status: StatusConfirmed, TotalCents: &second})
	if *o.TotalCents != 100 {
		t.Errorf("total = %d, want the first one, 100", *o.TotalCents)
	}
	first = 7 // Apply copies: the caller's variable is not aliased
	if *o.TotalCents != 100 {
		t.Errorf("total aliased the update's")
	}
}
