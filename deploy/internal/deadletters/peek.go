package deadletters

import (
	"context"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Peek returns up to limit messages from the head of queue and leaves every one of them
// in it.
//
// It takes them with basic.get without acknowledging them, holding each until it has them
// all (so that it never sees one twice), then returns them with one basic.nack(multiple,
// requeue). If warrenctl dies in between, closing the connection returns them just the
// same: nothing is lost or duplicated. RabbitMQ 4.0 puts a returned message at the tail
// of a quorum queue, so looking at the first N of M messages moves those N behind the
// others; looking at all of them keeps the order. Nothing reads a dead-letter queue in order.
//
// Up to RabbitMQ 4.2 every return also counts towards the queue's delivery limit: the
// policies of messaging.Topology.Policies, which warrenctl broker setup applies, lift it so
// that looking never moves a message.
//
// Why not the management API's "get messages" (ackmode reject_requeue_true)? It does the
// same basic.get but returns messages with basic.reject, which RabbitMQ 4.3 and later
// count as a failed delivery (basic.nack is not counted): without the policies, every look would
// bring a dead letter closer to leaving its queue. And replay needs AMQP anyway, to take a
// message off only after its copy is confirmed; reading both ways the same keeps one
// decoder, with RabbitMQ's typed headers (x-death) intact.
func (c *Client) Peek(ctx context.Context, queue string, limit int) ([]amqp.Delivery, error) {
	ch, err := c.conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("peek %s: %w", queue, err)
	}
	defer ch.Close()
	var got []amqp.Delivery
	defer func() {
		if len(got) > 0 {
			returnHeld(ch, queue, got[len(got)-1].DeliveryTag, len(got))
		}
	}()
	for len(got) < limit {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("peek %s: %w", queue, err)
		}
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			return nil, fmt.Errorf("peek %s: %w", queue, notFound(err))
		}
		if !ok {
			break
		}
		got = append(got, d)
	}
	return got, nil
}

// returnHeld returns the n messages held on ch, the last of which has delivery tag last,
// to queue with one basic.nack(multiple, requeue), and waits a moment for the broker to
// make them ready again.
//
// Closing the channel would return them as well; the nack does it with the method that
// RabbitMQ does not count as a failed delivery. The broker applies it after answering,
// though, so the wait is what lets the next command (an inspect, then a replay) find the
// messages back: until the queue holds n ready messages more than it did, at most 5 s.
func returnHeld(ch *amqp.Channel, queue string, last uint64, n int) {
	before, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return // the channel is closed, and its messages are returned with it
	}
	if err := ch.Nack(last, true, true); err != nil {
		return
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil || q.Messages >= before.Messages+n {
			return
		}
	}
}
