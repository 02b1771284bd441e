package livepage

import (
	"context"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

// poisonBody is an OrderPlaced whose JSON breaks off: no consumer can ever decode it, so
// the consumer dead-letters it at once (no retry can help).
const poisonBody = `{"order_id": "poison", "items": [{"sku": "carrot-`

// Poison is the notice the page shows when it has published a poison message.
type Poison struct {
	MessageID string    `json:"message_id"`
	Queue     string    `json:"queue"`
	DLQ       string    `json:"dlq"`
	At        time.Time `json:"at"`
}

// poisoner publishes poison messages straight into one queue through the default
// exchange, as only a broker-side client can: the order API refuses malformed orders with
// 400, and the broker lets no service write into another's queue.
type poisoner struct {
	url, queue string

	mu   sync.Mutex
	conn *amqp.Connection
}

// channel opens a channel on the page's connection, dialling it first when needed.
func (p *poisoner) channel() (*amqp.Channel, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil || p.conn.IsClosed() {
		conn, err := amqp.DialConfig(p.url, amqp.Config{Properties: amqp.Table{"connection_name": "warren-live"}})
		if err != nil {
			return nil, fmt.Errorf("dial the broker: %w", err)
		}
		p.conn = conn
	}
	ch, err := p.conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open a channel: %w", err)
	}
	return ch, nil
}

func (p *poisoner) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		_ = p.conn.Close()
	}
}

// publish publishes one poison message and waits for the broker's confirmation.
func (p *poisoner) publish(ctx context.Context) (Poison, error) {
	ch, err := p.channel()
	if err != nil {
		return Poison{}, err
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		return Poison{}, fmt.Errorf("confirm mode: %w", err)
	}
	n := Poison{MessageID: "live-poison-" + randomHex(8), Queue: p.queue, DLQ: messaging.DeadLetterQueueName(p.queue), At: time.Now().UTC()}
	conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", p.queue, true, false, amqp.Publishing{
		MessageId: n.MessageID, Type: events.TypeOrderPlaced, ContentType: "application/json",
		DeliveryMode: amqp.Persistent, Body: []byte(poisonBody),
	})
	if err != nil {
		return Poison{}, fmt.Errorf("publish to %s: %w", p.queue, err)
	}
	if ok, err := conf.WaitContext(ctx); err != nil || !ok {
		return Poison{}, fmt.Errorf("publish to %s: not confirmed (%v)", p.queue, err)
	}
	return n, nil
}

// deadLetters reads the depth of each queue's dead-letter queue from the broker.
func (p *poisoner) deadLetters(_ context.Context, queues []string) ([]QueueRow, error) {
	rows := make([]QueueRow, 0, len(queues))
	for _, q := range queues {
		// A passive declare of a queue that is missing closes the channel: one each.
		ch, err := p.channel()
		if err != nil {
			return nil, err
		}
		row := QueueRow{Queue: q}
		if info, err := ch.QueueDeclarePassive(messaging.DeadLetterQueueName(q), true, false, false, false, nil); err == nil {
			n := float64(info.Messages)
			row.DeadLetters = &n
		}
		if info, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err == nil {
			ready, consumers := float64(info.Messages), float64(info.Consumers)
			row.Ready, row.Consumers = &ready, &consumers
		}
		_ = ch.Close()
		rows = append(rows, row)
	}
	return rows, nil
}
