package messaging

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Dispatcher routes a queue's messages to a handler by their type header. A queue often
// carries several types (a fanout and topic bindings feed one queue per service); a type
// with no handler is a permanent failure, so an unknown message is dead-lettered instead of
// being silently acked.
type Dispatcher map[string]message.NoPublishHandlerFunc

// Handle implements message.NoPublishHandlerFunc.
func (d Dispatcher) Handle(msg *message.Message) error {
	if msg.UUID == "" {
		return Permanent(ErrNoMessageID)
	}
	typ := msg.Metadata.Get(HeaderType)
	h, ok := d[typ]
	if !ok {
		return Permanent(fmt.Errorf("%w %q", ErrUnknownType, typ))
	}
	return h(msg)
}

// Validator is implemented by payloads that can check themselves after decoding.
type Validator interface{ Validate() error }

// Handle adapts a typed handler: it decodes the JSON payload into T, validates it when T is
// a Validator, and calls fn with the message's context. A payload that does not decode or
// validate is a permanent failure.
func Handle[T any](fn func(ctx context.Context, event T, msg *message.Message) error) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		event, err := Decode[T](msg.Payload)
		if err != nil {
			return err
		}
		return fn(msg.Context(), event, msg)
	}
}

// Decode decodes a JSON payload into T and validates it. Errors are Permanent.
func Decode[T any](payload []byte) (T, error) {
	var event T
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&event); err != nil {
		return event, Permanent(fmt.Errorf("decode %T: %w", event, err))
	}
	if dec.More() {
		return event, Permanent(fmt.Errorf("decode %T: trailing data after the JSON value", event))
	}
	if v, ok := any(event).(Validator); ok {
		if err := v.Validate(); err != nil {
			return event, Permanent(fmt.Errorf("validate %T: %w", event, err))
		}
	}
	return event, nil
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
