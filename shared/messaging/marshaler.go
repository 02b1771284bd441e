package messaging

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Marshaler converts between Watermill messages and AMQP publishings. It replaces
// watermill-amqp's DefaultMarshaler, which fails on any header that is not a string: RabbitMQ
// itself adds such headers (x-death, a table, on dead-lettered messages; x-delivery-count,
// an integer, on quorum-queue redeliveries), and the failure happens before any middleware
// can see the message, so the delivery is nacked and requeued forever.
//
// Unmarshal therefore never fails: a non-string header is kept as its JSON text (or its
// decimal form for numbers). Whether the payload makes sense is the handler's business; a
// bad payload is dead-lettered there, with a reason.
type Marshaler struct{}

// Marshaler is a drop-in for watermill-amqp's: a team that keeps watermill-amqp's publisher
// and subscriber can configure it (Config.Marshal.Marshaler) and get the fix above.
var _ wamqp.Marshaler = Marshaler{}

// Marshal implements watermill-amqp's Marshaler. Messages are persistent; the well-known
// metadata keys become their AMQP properties.
func (Marshaler) Marshal(msg *message.Message) (amqp.Publishing, error) {
	headers := make(amqp.Table, len(msg.Metadata))
	for k, v := range msg.Metadata {
		switch k {
		case HeaderType, HeaderCorrelationID, HeaderReplyTo:
			// carried as properties below
		default:
			headers[k] = v
		}
	}
	p := amqp.Publishing{
		Headers:       headers,
		ContentType:   "application/json",
		DeliveryMode:  amqp.Persistent,
		MessageId:     msg.UUID,
		Type:          msg.Metadata.Get(HeaderType),
		CorrelationId: msg.Metadata.Get(HeaderCorrelationID),
		ReplyTo:       msg.Metadata.Get(HeaderReplyTo),
		Timestamp:     time.Now().UTC(),
		Body:          msg.Payload,
	}
	return p, nil
}

// Unmarshal implements watermill-amqp's Marshaler. It never returns an error.
func (Marshaler) Unmarshal(d amqp.Delivery) (*message.Message, error) {
	msg := message.NewMessage(d.MessageId, d.Body)
	md := make(message.Metadata, len(d.Headers)+6)
	for k, v := range d.Headers {
		md[k] = headerString(v)
	}
	setIf(md, HeaderType, d.Type)
	setIf(md, HeaderCorrelationID, d.CorrelationId)
	setIf(md, HeaderReplyTo, d.ReplyTo)
	md[HeaderExchange] = d.Exchange
	md[HeaderRoutingKey] = d.RoutingKey
	if d.Redelivered {
		md[HeaderRedelivered] = "true"
	}
	msg.Metadata = md
	return msg, nil
}

func setIf(md message.Metadata, key, value string) {
	if value != "" {
		md[key] = value
	}
}

// headerString renders any AMQP field value as text.
func headerString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case int, int8, int16, int32, int64, uint8, uint16, uint32, uint64:
		return fmt.Sprint(v)
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
}
