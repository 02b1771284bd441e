// Package deadletters is what an operator does with Warren's dead letters: count them, look
// at them without losing them, send them back once the cause is fixed, or drop them. It
// speaks AMQP (amqp091-go) as an administrator, because only AMQP can take one message off a
// queue after its copy is confirmed elsewhere; the management API cannot.
//
// A dead letter is any message in a "<queue>.dlq", in warren.unroutable-messages or in
// warren.dead-letter-archive (see Queues). It was put there either by the consumer's
// DeadLetter middleware (shared/messaging: x-warren-dead-letter-* headers and the original
// exchange and routing key) or by the broker itself (a raw reject or the delivery limit:
// RabbitMQ's x-death header only). Describe reads both; Origins checks, before a replay,
// what they claim against what the broker recorded.
package deadletters

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/messaging"
)

// ErrNotDeadLetterQueue is returned for a queue that Queues does not list: the commands
// that take messages off a queue refuse work queues, so that a typo cannot purge one.
var ErrNotDeadLetterQueue = errors.New("not a dead-letter queue")

// ErrNoQueue is returned (wrapped) when the queue does not exist in the vhost.
var ErrNoQueue = errors.New("queue does not exist")

// Queues lists every queue where dead letters wait, in the order an operator reads them:
// the dead-letter queue of each work queue of topology, then the queue of unroutable
// messages, then the archive of expired dead letters.
func Queues(topology messaging.Topology) []string {
	out := make([]string, 0, len(topology.Queues)+2)
	for _, q := range topology.Queues {
		out = append(out, messaging.DeadLetterQueueName(q.Name))
	}
	return append(out, messaging.UnroutableQueue, messaging.ArchiveQueue)
}

// CheckQueue returns ErrNotDeadLetterQueue (wrapped) unless queue is one of Queues(topology).
func CheckQueue(topology messaging.Topology, queue string) error {
	if !slices.Contains(Queues(topology), queue) {
		return fmt.Errorf("%q: %w (warrenctl dlq list shows them)", queue, ErrNotDeadLetterQueue)
	}
	return nil
}

// Config says how to reach the broker.
type Config struct {
	// URL is the broker's AMQP URL, amqp://host:5672 or amqps://host:5671. User, password
	// and vhost in it are ignored: the fields below are used.
	URL string
	// User and Password are an administrator's (or any user allowed to read, write and
	// configure the dead-letter queues and write to the exchanges replays go to).
	User, Password string
	// VHost is the vhost Warren runs in; "/" when empty.
	VHost string
	// TLS configures amqps:// connections; nil uses the system's roots.
	TLS *tls.Config
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
		return fmt.Errorf("deadletters config: URL %q is not an amqp(s):// URL", c.URL)
	}
	if c.User == "" || c.Password == "" {
		return errors.New("deadletters config: User and Password are required")
	}
	return nil
}

// Client is one AMQP connection to the broker. Each call opens a channel of its own (a
// failed passive declare closes its channel), so a Client is safe for concurrent use; the
// calls that take messages off a queue should still not run twice at once on one queue,
// or each sees only the messages the other is not holding.
type Client struct {
	conn *amqp.Connection
}

// Dial connects to the broker.
func Dial(config Config) (*Client, error) {
	if err := config.Validate(); err != nil {
		return nil, err
	}
	vhost := config.VHost
	if vhost == "" {
		vhost = "/"
	}
	u, _ := url.Parse(config.URL) // validated above
	u.User, u.Path, u.RawPath = nil, "", ""
	conn, err := amqp.DialConfig(u.String(), amqp.Config{
		Vhost:           vhost,
		SASL:            []amqp.Authentication{&amqp.PlainAuth{Username: config.User, Password: config.Password}},
		TLSClientConfig: config.TLS,
		Properties:      amqp.Table{"connection_name": "warrenctl dlq"},
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s vhost %s: %w", u.Host, vhost, err)
	}
	return &Client{conn: conn}, nil
}

// Close closes the connection. Messages a call still held are returned to their queue.
func (c *Client) Close() error { return c.conn.Close() }

// Count returns how many messages wait in queue (ready ones; none of Warren's dead-letter
// queues has a consumer), or an error wrapping ErrNoQueue.
func (c *Client) Count(queue string) (int, error) {
	ch, err := c.conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", queue, err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", queue, notFound(err))
	}
	return q.Messages, nil
}

// Purge deletes every ready message of queue and returns how many it deleted.
func (c *Client) Purge(queue string) (int, error) {
	ch, err := c.conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("purge %s: %w", queue, err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil); err != nil {
		return 0, fmt.Errorf("purge %s: %w", queue, notFound(err))
	}
	n, err := ch.QueuePurge(queue, false)
	if err != nil {
		return 0, fmt.Errorf("purge %s: %w", queue, err)
	}
	return n, nil
}

// notFound wraps ErrNoQueue around the broker's NOT_FOUND channel error.
func notFound(err error) error {
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
		return fmt.Errorf("%w (%s)", ErrNoQueue, strings.TrimPrefix(amqpErr.Reason, "NOT_FOUND - "))
	}
	return err
}
