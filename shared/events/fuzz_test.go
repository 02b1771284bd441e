package events_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

// decoders decode and validate a payload as each contract does in a consumer. A decode
// error must be Permanent (the message is dead-lettered at once, never retried); a payload
// that decodes must survive a round trip unchanged in meaning.
var decoders = []func(t *testing.T, payload []byte){
	roundTrip[events.OrderPlaced],
	roundTrip[events.OrderCancelled],
	roundTrip[events.OrderConfirmed],
	roundTrip[events.OrderRejected],
	roundTrip[events.StockReserved],
	roundTrip[events.StockOutOfStock],
	roundTrip[events.StockReleased],
	roundTrip[events.StockQuery],
	roundTrip[events.StockLevel],
}

func roundTrip[T any](t *testing.T, payload []byte) {
	event, err := messaging.Decode[T](payload)
	if err != nil {
		if !messaging.IsPermanent(err) {
			t.Fatalf("%T: decode error %v is not permanent: the message would be retried for nothing", event, err)
		}
		return
	}
	again, err := json.Marshal(event)
	if err != nil {
		t.Fatalf("%T: accepted but cannot be re-encoded: %v", event, err)
	}
	if _, err := messaging.Decode[T](again); err != nil {
		t.Fatalf("%T: accepted %q but not its own encoding %q: %v", event, payload, again, err)
	}
}

// FuzzDecode runs every message decoder on arbitrary payloads: none may panic, every
// rejection is a permanent failure. Seeds are in testdata/fuzz/FuzzDecode; `make fuzz` runs it.
func FuzzDecode(f *testing.F) {
	f.Add(uint8(0), []byte(`{"order_id":"o-1","region":"europe","items":[{"sku":"s","quantity":1}]}`))
	f.Add(uint8(1), []byte(`{"order_id":"o-1"}`))
	f.Add(uint8(4), []byte(`{"order_id":"o-1","region":"asia","items":null}`))
	f.Add(uint8(7), []byte(`{"sku":""}`))
	f.Add(uint8(8), []byte(`{"sku":"s","available":-1,"found":true} trailing`))
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		decoders[int(which)%len(decoders)](t, payload)
	})
}

func TestMalformedIsTheSentinelOfEveryValidation(t *testing.T) {
	for _, v := range []messaging.Validator{
		events.OrderPlaced{}, events.OrderCancelled{}, events.OrderConfirmed{}, events.OrderRejected{},
		events.StockReserved{}, events.StockOutOfStock{}, events.StockReleased{}, events.StockQuery{},
	} {
		if err := v.Validate(); !errors.Is(err, events.ErrMalformed) {
			t.Errorf("%T{}.Validate() = %v, want ErrMalformed", v, err)
		}
	}
}
