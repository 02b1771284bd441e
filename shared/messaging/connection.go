package messaging

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	amqp "github.com/rabbitmq/amqp091-go"
)

// connection is one AMQP connection that reconnects by itself, with backoff, whenever the
// broker closes it, until Close. It is safe for concurrent use.
//
// It replaces watermill-amqp v2.1.3's ConnectionWrapper, which swaps its connection and its
// "connected" channel on reconnect without a lock while the publisher, the subscribers and
// the flow-control watch read them from their own goroutines: `go test -race` reported
// those reads against handleConnectionClose's and connect's writes (a torn read could hand
// a publisher a half-replaced connection). Here both live under one mutex.
type connection struct {
	dial   func() (*amqp.Connection, error)
	logger *slog.Logger

	mu        sync.Mutex
	conn      *amqp.Connection // the latest connection; closed while a reconnect is under way
	connected chan struct{}    // closed while conn is up; an open one while reconnecting

	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	stop      context.CancelFunc // cancels a reconnect in progress
}

// Reconnect backoff: from half a second, growing to reconnectMaxWait, forever until Close.
// watermill-amqp's default grew to 60 s, too slow to notice that a restarted broker is back.
const (
	reconnectInitialWait = 500 * time.Millisecond
	reconnectMaxWait     = 5 * time.Second
)

// openConnection dials once and, when that succeeds, keeps the connection up until Close.
func openConnection(dial func() (*amqp.Connection, error), logger *slog.Logger) (*connection, error) {
	conn, err := dial()
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &connection{dial: dial, logger: logger, conn: conn, connected: make(chan struct{}),
		closing: make(chan struct{}), stop: stop}
	close(c.connected)
	go c.keepUp(ctx, conn)
	return c, nil
}

// keepUp waits for conn to close and dials a new one, again and again, until Close.
func (c *connection) keepUp(ctx context.Context, conn *amqp.Connection) {
	for {
		// amqp091 closes the channel at once when conn is already closed.
		select {
		case <-c.closing:
			return
		case amqpErr := <-conn.NotifyClose(make(chan *amqp.Error, 1)):
			c.mu.Lock()
			c.connected = make(chan struct{})
			c.mu.Unlock()
			c.logger.Warn("connection to RabbitMQ lost; reconnecting", "error", amqpErr)
		}
		next, err := backoff.Retry(ctx, func() (*amqp.Connection, error) {
			conn, err := c.dial()
			if err != nil {
				c.logger.Warn("cannot reconnect to RabbitMQ; retrying", "error", err)
			}
			return conn, err
		}, backoff.WithBackOff(&backoff.ExponentialBackOff{
			InitialInterval:     reconnectInitialWait,
			RandomizationFactor: backoff.DefaultRandomizationFactor,
			Multiplier:          backoff.DefaultMultiplier,
			MaxInterval:         reconnectMaxWait,
		}), backoff.WithMaxElapsedTime(0))
		if err != nil {
			return // only when Close cancelled ctx
		}
		c.mu.Lock()
		select {
		case <-c.closing: // Close ran while dialling: it closed the old connection only
			c.mu.Unlock()
			_ = next.Close()
			return
		default:
		}
		c.conn = next
		close(c.connected)
		c.mu.Unlock()
		c.logger.Info("reconnected to RabbitMQ")
		conn = next
	}
}

// Connection returns the current AMQP connection, which may be closed (check IsConnected
// or the connection's IsClosed before use).
func (c *connection) Connection() *amqp.Connection {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// Connected returns a channel that is closed while the connection is up.
func (c *connection) Connected() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

// IsConnected reports whether the connection is up.
func (c *connection) IsConnected() bool {
	select {
	case <-c.Connected():
		return true
	default:
		return false
	}
}

// Closed reports whether Close was called.
func (c *connection) Closed() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// Close stops reconnecting and closes the connection. It does not wait for a dial in
// progress: keepUp closes what that dial returns.
func (c *connection) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.mu.Lock()
		close(c.closing)
		conn := c.conn
		c.mu.Unlock()
		c.stop()
		if err = conn.Close(); errors.Is(err, amqp.ErrClosed) {
			err = nil // the broker closed it first
		}
	})
	return err
}
