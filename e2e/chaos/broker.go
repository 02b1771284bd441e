package chaos

import (
	"context"
	"fmt"
	"net/http"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

// workQueues are the queues Warren's services consume, each with a "<queue>.dlq".
var workQueues = []string{
	events.QueueInventory, events.QueueEmail, events.QueueSMS,
	events.QueueAnalytics, events.QueueOrder, events.QueueStockQuery,
}

// Broker reads the broker's state as its administrator: queue figures from the management
// API, dead letters over AMQP. In a cluster, point both at a node that is up.
type Broker struct {
	API     string // management API, http://user:password@host:port
	AMQPURL string
}

// Queue is a queue's state as the management API reports it. Its figures lag by up to
// the statistics interval (5 s by default).
type Queue struct {
	Name      string   `json:"name"`
	Ready     int      `json:"messages_ready"`
	Unacked   int      `json:"messages_unacknowledged"`
	Consumers int      `json:"consumers"`
	Leader    string   `json:"leader"`
	Members   []string `json:"members"`
	Online    []string `json:"online"`
}

// Queues returns the state of every queue of the default vhost, by name.
func (b Broker) Queues(ctx context.Context) (map[string]Queue, error) {
	var list []Queue
	path := "/api/queues/%2F?columns=name,messages_ready,messages_unacknowledged,consumers,leader,members,online"
	if err := call(ctx, "", http.MethodGet, b.API+path, nil, http.StatusOK, &list); err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	out := make(map[string]Queue, len(list))
	for _, q := range list {
		out[q.Name] = q
	}
	return out, nil
}

// ConnectionsByNode counts the client connections each node holds.
func (b Broker) ConnectionsByNode(ctx context.Context) (map[string]int, error) {
	var list []struct {
		Node string `json:"node"`
	}
	if err := call(ctx, "", http.MethodGet, b.API+"/api/connections?columns=node", nil, http.StatusOK, &list); err != nil {
		return nil, fmt.Errorf("list connections: %w", err)
	}
	out := map[string]int{}
	for _, c := range list {
		out[c.Node]++
	}
	return out, nil
}

// DeadLetter is a message found in a dead-letter queue.
type DeadLetter struct {
	Queue, MessageID, Type, Reason, Attempts string
}

// DrainDeadLetters takes every message out of the dead-letter queue of each work queue
// and returns them.
func (b Broker) DrainDeadLetters(ctx context.Context) ([]DeadLetter, error) {
	conn, err := amqp.Dial(b.AMQPURL)
	if err != nil {
		return nil, fmt.Errorf("dial the broker: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	for _, q := range workQueues {
		dlq := messaging.DeadLetterQueueName(q)
		for ctx.Err() == nil {
			d, ok, err := ch.Get(dlq, false)
			if err != nil {
				return out, fmt.Errorf("basic.get %s: %w", dlq, err)
			}
			if !ok {
				break
			}
			reason, _ := d.Headers[messaging.HeaderDeadLetterReason].(string)
			if reason == "" && d.Headers["x-first-death-reason"] != nil {
				reason = fmt.Sprintf("broker: %v", d.Headers["x-first-death-reason"])
			}
			attempts, _ := d.Headers[messaging.HeaderDeadLetterTries].(string)
			out = append(out, DeadLetter{Queue: q, MessageID: d.MessageId, Type: d.Type, Reason: reason, Attempts: attempts})
			if err := d.Ack(false); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// Publish publishes msg straight into queue (through the default exchange) and waits for
// the broker's confirmation.
func (b Broker) Publish(ctx context.Context, queue string, msg amqp.Publishing) error {
	conn, err := amqp.Dial(b.AMQPURL)
	if err != nil {
		return fmt.Errorf("dial the broker: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, msg)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", queue, err)
	}
	if ok, err := conf.WaitContext(ctx); err != nil || !ok {
		return fmt.Errorf("publish to %s: not confirmed (%v)", queue, err)
	}
	return nil
}
