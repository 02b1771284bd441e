// Package texting is the sms service's business: it texts customers when their order is
// confirmed, for the regions it is configured to serve.
package texting

import (
	"fmt"
	"time"

	"github.com/warrenhq/warren/shared/events"
)

// Text is one SMS to a customer.
type Text struct {
	// MessageID is the id of the event the text answers: one text per event.
	MessageID string    `json:"message_id"`
	OrderID   string    `json:"order_id"`
	To        string    `json:"to"`
	Body      string    `json:"body"`
	SentAt    time.Time `json:"sent_at"`
}

// Confirmation is the text for an OrderConfirmed, answering the message messageID. It goes
// to the customer's number as the contract normalises it (events.Customer.TextNumber, the
// rule POST /orders checked), "+442079460958" for "+44 20 7946 0958"; a number that breaks
// the rule is an events.ErrMalformed.
func Confirmation(messageID string, e events.OrderConfirmed) (Text, error) {
	to, err := e.Customer.TextNumber()
	if err != nil {
		return Text{}, fmt.Errorf("text order %s: %w", e.OrderID, err)
	}
	return Text{
		MessageID: messageID,
		OrderID:   e.OrderID,
		To:        to,
		Body:      "Warren: your order " + e.OrderID + " is confirmed",
	}, nil
}
