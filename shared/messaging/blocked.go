package messaging

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrBlocked is returned by Publish, Request and Reply while the broker blocks the
// publishing connection: RabbitMQ's memory or disk alarm is on (connection.blocked). The
// broker then stops reading from the connection, so a publish would wait until the alarm
// clears; failing at once lets the caller keep the message (the outbox) or answer its own
// client (503) instead. Nothing is lost: retry once the broker unblocks.
var ErrBlocked = errors.New("the broker is blocking publishes (memory or disk alarm)")

// flowControl tracks whether the broker blocks one connection. watermill-amqp's wrapper
// replaces the amqp091 connection on every reconnect, so the registration with
// NotifyBlocked is renewed for each new connection, which starts unblocked.
type flowControl struct {
	name   string // which connection, for the logs
	logger *slog.Logger

	mu      sync.Mutex
	reason  string        // why the broker blocks it, while it does
	blocked chan struct{} // closed while blocked; replaced by an open one when unblocked
}

// watchFlow starts tracking conn's flow control until conn is closed.
func watchFlow(conn *connection, name string, logger *slog.Logger) *flowControl {
	f := &flowControl{name: name, logger: logger, blocked: make(chan struct{})}
	go f.watch(conn)
	return f
}

// reconnectPoll is how often watch looks for the wrapper's next connection: the wrapper
// tells nobody when it has reconnected.
const reconnectPoll = 100 * time.Millisecond

func (f *flowControl) watch(w *connection) {
	var last *amqp.Connection
	for !w.Closed() {
		conn := w.Connection()
		if !w.IsConnected() || conn == nil || conn == last || conn.IsClosed() {
			time.Sleep(reconnectPoll)
			continue
		}
		last = conn
		// amqp091 closes the channel when the connection closes; it sends on it from its
		// reader, so it must be drained at once.
		for b := range conn.NotifyBlocked(make(chan amqp.Blocking, 1)) {
			f.set(b.Active, b.Reason)
		}
		f.set(false, "") // a new connection starts unblocked
	}
}

func (f *flowControl) set(active bool, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	was := f.reason != ""
	switch {
	case active && !was:
		f.reason = reason
		if f.reason == "" {
			f.reason = "no reason given"
		}
		close(f.blocked)
		f.logger.Warn("the broker is blocking publishes", "connection", f.name, "reason", f.reason)
	case !active && was:
		f.reason = ""
		f.blocked = make(chan struct{})
		f.logger.Info("the broker no longer blocks publishes", "connection", f.name)
	}
}

// err returns an error matching ErrBlocked while the broker blocks the connection, else nil.
func (f *flowControl) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reason == "" {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrBlocked, f.reason)
}

// onBlock returns a channel closed while the broker blocks the connection: a wait for the
// broker selects on it, since a blocked broker answers nothing until the alarm clears.
func (f *flowControl) onBlock() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.blocked
}

// closeChannel closes ch, without waiting while the broker blocks the connection: a close
// waits for the broker's answer, which a blocked broker sends only once the alarm clears,
// and a shutdown must not wait for that.
func (f *flowControl) closeChannel(ch *amqp.Channel) error {
	if f.err() != nil {
		go ch.Close() //nolint:errcheck // closing the connection ends it either way
		return nil
	}
	return ch.Close()
}

// closeConnection closes w, giving a connection the broker blocks a second to answer.
func (f *flowControl) closeConnection(w *connection) error {
	if conn := w.Connection(); f.err() != nil && conn != nil {
		// The wrapper's own Close would wait for the broker without end; after this, it
		// finds the connection closed and only stops reconnecting.
		_ = conn.CloseDeadline(time.Now().Add(time.Second))
	}
	return w.Close()
}
