package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/warrenhq/warren/shared/messaging"
)

// Delivered is an event as a consumer's handler receives it: messaging.NewEvent's message
// of type typ and payload, with the message id id (a redelivery carries the same one) and
// stamped as having occurred at occurredAt, so that a test can hand a handler a message
// older than the processed-message ledger's horizon.
func Delivered(t testing.TB, typ, id string, occurredAt time.Time, payload any) *message.Message {
	t.Helper()
	msg, err := messaging.NewEvent(typ, "", payload)
	if err != nil {
		t.Fatal(err)
	}
	msg.UUID = id
	msg.Metadata.Set(messaging.HeaderOccurredAt, occurredAt.UTC().Format(time.RFC3339Nano))
	msg.SetContext(context.Background())
	return msg
}
