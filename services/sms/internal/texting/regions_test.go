package texting

import (
	"errors"
	"slices"
	"testing"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

func TestRegionConfig(t *testing.T) {
	tests := []struct {
		setting   string
		bound     []string // confirmation keys the sms queue is bound to
		unbound   []string // confirmation keys removed at start-up
		wantError bool
	}{
		{setting: "europe,americas", bound: []string{"order.europe.confirmed", "order.americas.confirmed"}, unbound: []string{"order.asia.confirmed"}},
		{setting: " asia ", bound: []string{"order.asia.confirmed"}, unbound: []string{"order.europe.confirmed", "order.americas.confirmed"}},
		{setting: "europe,asia,americas", bound: []string{"order.europe.confirmed", "order.asia.confirmed", "order.americas.confirmed"}},
		{setting: "", unbound: []string{"order.europe.confirmed", "order.asia.confirmed", "order.americas.confirmed"}},
		{setting: "europe,mars", wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.setting, func(t *testing.T) {
			regions, err := events.ParseRegions(tt.setting)
			if tt.wantError {
				if err == nil {
					t.Fatalf("ParseRegions(%q) = %v, want an error", tt.setting, regions)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			q, _ := events.Topology(regions).Queue(events.QueueSMS)
			if got := topicKeys(q.Bindings); !slices.Equal(got, tt.bound) {
				t.Errorf("bound to %v, want %v", got, tt.bound)
			}
			if got := topicKeys(StaleBindings(regions)); !slices.Equal(got, tt.unbound) {
				t.Errorf("unbinds %v, want %v", got, tt.unbound)
			}
		})
	}
}

func topicKeys(bindings []messaging.Binding) []string {
	var keys []string
	for _, b := range bindings {
		if b.Exchange == events.ExchangeTopic {
			keys = append(keys, b.Key)
		}
	}
	return keys
}

func TestConfirmationText(t *testing.T) {
	text, err := Confirmation("m-1", events.OrderConfirmed{OrderID: "o-42", Customer: events.Customer{Phone: "+44 (20) 7946-0958"}})
	if err != nil || text.Body != "Warren: your order o-42 is confirmed" || text.To != "+442079460958" || text.MessageID != "m-1" || text.OrderID != "o-42" {
		t.Errorf("text = %+v, %v; want one to +442079460958", text, err)
	}
}

// TestConfirmationRefusesNumbersNoOneCanText: the contract's rule, so the consumer
// dead-letters (as malformed) what POST /orders would have refused.
func TestConfirmationRefusesNumbersNoOneCanText(t *testing.T) {
	for _, phone := range []string{"+4420", "+44 20 RABBIT", "+44\n20 7946 0958", "44+2079460958"} {
		_, err := Confirmation("m-1", events.OrderConfirmed{OrderID: "o-42", Customer: events.Customer{Phone: phone}})
		if !errors.Is(err, events.ErrMalformed) {
			t.Errorf("Confirmation(phone %q) = %v, want ErrMalformed", phone, err)
		}
	}
}
