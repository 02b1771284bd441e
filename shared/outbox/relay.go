package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/postgres"
)

const (
	selectSQL = `SELECT id, topic, uuid, metadata, payload FROM outbox_messages ORDER BY id LIMIT $1`
	deleteSQL = `DELETE FROM outbox_messages WHERE id = ANY($1)`
)

// Config configures a Relay.
type Config struct {
	// BatchSize is the most messages read, published and deleted at once. Default 500.
	// The next batch gathers while one is being published, so batches grow, up to this,
	// when the broker is slow to confirm (its disk) or messages come fast.
	BatchSize int
	// PollInterval is how often an idle relay looks for messages although no notification
	// came. Store's notification wakes it at once, so this is only a safety net. Default 1 s.
	PollInterval time.Duration
	// RetryInterval is how long the relay waits after a failed publish, and before it
	// reconnects to the database. Default 1 s.
	RetryInterval time.Duration
	// BatchTimeout bounds the publish and the delete of one batch. A batch in flight when
	// Run's context is cancelled is still finished within it, so that a restart does not
	// publish it a second time. Default 10 s.
	BatchTimeout time.Duration
	// LeaseDuration is how long the relaying replica's lease lasts unless renewed: the
	// longest the outbox waits when that replica vanishes without a word (a lost host, a
	// partition) before a standby takes over. Shorter means a faster takeover, but a
	// database that stalls for longer than this makes the leader stand down. Default 10 s.
	LeaseDuration time.Duration
	// RenewInterval is how often the leader renews its lease and a standby tries to take
	// it; it must be shorter than LeaseDuration, so that a renewal that fails can be
	// retried before the lease runs out. A standby takes over a vanished leader within
	// LeaseDuration + RenewInterval (12 s by default), and one that stopped cleanly at once.
	// Default 2 s.
	RenewInterval time.Duration
	// Metrics, if set, receives the relay's metrics (NewMetrics), and every replica's
	// relay then reads the outbox's backlog every BacklogInterval for its gauges.
	Metrics *Metrics
	// BacklogInterval is how often the backlog gauges are read from the database: one
	// query over a connection of their own. Default 5 s (Prometheus scrapes every 10 s).
	BacklogInterval time.Duration
}

func (c *Config) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = time.Second
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = 10 * time.Second
	}
	if c.LeaseDuration == 0 {
		c.LeaseDuration = 10 * time.Second
	}
	if c.RenewInterval == 0 {
		c.RenewInterval = 2 * time.Second
	}
	if c.BacklogInterval == 0 {
		c.BacklogInterval = 5 * time.Second
	}
}

func (c Config) validate() error {
	if c.BatchSize < 0 || c.PollInterval < 0 || c.RetryInterval < 0 || c.BatchTimeout < 0 || c.LeaseDuration < 0 || c.RenewInterval < 0 || c.BacklogInterval < 0 {
		return fmt.Errorf("negative setting in %+v", c)
	}
	if c.RenewInterval >= c.LeaseDuration {
		return fmt.Errorf("RenewInterval (%s) must be shorter than LeaseDuration (%s)", c.RenewInterval, c.LeaseDuration)
	}
	return nil
}

// Relay publishes what Store wrote.
//
// Delivery is at least once: a batch is deleted only after the broker confirmed it, so a
// failed publish, a crash or a lost database connection can only lead to a message being
// published again, never to one being lost. Consumers are idempotent by message id.
//
// Of several replicas' relays, one publishes (it holds a lease in the database, see
// lease.go) and the others stand by, so in normal operation no message is published twice.
// When the relaying replica stops, another takes over at once; when it vanishes without
// closing its connections (a lost host, a partition), within LeaseDuration +
// RenewInterval. The leader publishes a wave only while its lease holds, and stops
// relaying when it cannot renew the lease before it runs out, so two relays publish at
// once only for a wave already sent when the lease ran out: that wave may go out twice.
//
// While the broker blocks publishing (a memory or disk alarm, messaging.ErrBlocked) the
// relay keeps every message and tries again every RetryInterval, each try failing at once
// without sending anything, until the alarm clears. The batch in flight when the block
// begins waits for its confirms up to BatchTimeout; if the alarm outlasts that, the
// broker may have taken it already, and it goes out twice.
//
// Order: the messages of one topic (exchange and routing key), and the messages of one
// correlation id whatever their topics (one order's events), are published in the order
// they were stored, except that of two transactions running at once the one that commits
// first may go first. Other messages of one batch may overtake each other: a batch is
// published in waves (see waves), each wave's topics at once.
type Relay struct {
	connConfig *pgx.ConnConfig
	out        message.Publisher
	config     Config
	logger     *slog.Logger
}

// NewRelay creates the outbox table if needed (postgres.Migrate) and returns a relay from
// pool's database to out.
func NewRelay(ctx context.Context, pool *pgxpool.Pool, out message.Publisher, config Config, logger *slog.Logger) (*Relay, error) {
	config.setDefaults()
	if err := config.validate(); err != nil {
		return nil, fmt.Errorf("outbox relay: %w", err)
	}
	if err := postgres.Migrate(ctx, pool, migrations); err != nil {
		return nil, fmt.Errorf("outbox relay: %w", err)
	}
	connConfig := pool.Config().ConnConfig.Copy()
	// The pool's tracer stays: it counts the relay's round trips with the service's, and
	// makes no span for them, since they run under no request's span (a root span per
	// batch would bury the traces that matter). The publish spans continue the stored
	// trace context.
	// A delete lost in a database crash only means its batch is published again: the
	// relay's commits need not wait for the disk.
	connConfig.RuntimeParams["synchronous_commit"] = "off"
	return &Relay{connConfig: connConfig, out: out, config: config, logger: logger}, nil
}

// Run relays until ctx is cancelled, then returns nil. It waits out database and broker
// outages: it reconnects, and retries a batch until the broker confirms it. With
// Config.Metrics it also keeps the backlog gauges, leader or not.
func (r *Relay) Run(ctx context.Context) error {
	if r.config.Metrics != nil {
		var wg sync.WaitGroup
		defer wg.Wait()
		watchCtx, stop := context.WithCancel(ctx)
		defer stop()
		wg.Go(func() { r.watchBacklog(watchCtx) })
	}
	for {
		err := r.lead(ctx)
		if ctx.Err() != nil {
			return nil
		}
		r.logger.WarnContext(ctx, "outbox relay: stopped relaying; reconnecting", "error", err)
		if !sleep(ctx, r.config.RetryInterval) {
			return nil
		}
	}
}

// lead waits until this relay holds the lease, then relays while it keeps it. It returns
// when ctx is cancelled (giving the lease up), the lease is lost, or the database fails.
func (r *Relay) lead(ctx context.Context) error {
	l := newLease(r.connConfig, r.config, r.logger)
	defer l.release(ctx)
	if err := l.acquire(ctx); err != nil {
		return err
	}
	leading, lost := context.WithCancelCause(ctx)
	defer lost(nil)
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		l.keep(leading, lost)
	}()
	err := r.relay(leading, l)
	lost(nil)
	<-kept // the lease's session is keep's until it returns
	if cause := context.Cause(leading); ctx.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return cause // the lease was lost: that, not the cancelled query, is the reason
	}
	return err
}

// relay holds one connection of its own (LISTEN belongs to a session) and relays over it
// until it fails or ctx is cancelled (a shutdown, or the lease lost).
func (r *Relay) relay(ctx context.Context, l *lease) error {
	conn, err := pgx.ConnectConfig(ctx, r.connConfig)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		// Bounded: the database may be unreachable, and the session ends either way.
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	// Listen before the first read: a message stored after that read has notified us.
	if _, err := conn.Exec(ctx, `LISTEN `+channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	for {
		full, err := r.batch(ctx, conn, l)
		if err != nil {
			return err
		}
		if full {
			continue // more are waiting
		}
		if err := r.await(ctx, conn); err != nil {
			return err
		}
	}
}

// await returns when a notification came or the poll interval passed. Every commit that
// stored messages notifies, so under load many arrive during one batch: it takes all of
// those received so far, since the next read answers them all.
func (r *Relay) await(ctx context.Context, conn *pgx.Conn) error {
	wait, cancel := context.WithTimeout(ctx, r.config.PollInterval)
	_, err := conn.WaitForNotification(wait) // returns at once for one received meanwhile
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && wait.Err() == nil {
		return fmt.Errorf("wait for notification: %w", err)
	}
	// With a done context, WaitForNotification returns only notifications already received.
	done, cancel := context.WithCancel(ctx)
	cancel()
	for {
		if n, _ := conn.WaitForNotification(done); n == nil {
			return nil
		}
	}
}

type row struct {
	id       int64
	topic    string
	uuid     string
	metadata message.Metadata
	payload  []byte
}

// batch relays the oldest messages and reports whether it read a full batch. A failed
// publish is logged and waited out (RetryInterval) and the confirmed part of the batch is
// deleted; only database errors are returned.
func (r *Relay) batch(ctx context.Context, conn *pgx.Conn, l *lease) (full bool, err error) {
	rows, _ := conn.Query(ctx, selectSQL, r.config.BatchSize)
	batch, err := pgx.CollectRows(rows, func(cr pgx.CollectableRow) (row, error) {
		var m row
		err := cr.Scan(&m.id, &m.topic, &m.uuid, &m.metadata, &m.payload)
		return m, err
	})
	if err != nil {
		return false, fmt.Errorf("read batch: %w", err)
	}
	if len(batch) == 0 {
		return false, nil
	}
	// Finish the batch even if ctx is cancelled meanwhile (a shutdown): see BatchTimeout.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.config.BatchTimeout)
	defer cancel()
	confirmed, pubErr := r.publish(bctx, batch, l)
	if len(confirmed) > 0 {
		if _, err := conn.Exec(bctx, deleteSQL, confirmed); err != nil {
			return false, fmt.Errorf("delete batch: %w", err)
		}
	}
	if errors.Is(pubErr, errLeaseExpired) {
		return false, pubErr
	}
	if pubErr != nil {
		// A broker alarm is logged once by messaging when it begins; the retries it causes
		// are expected until it clears.
		level := slog.LevelWarn
		if errors.Is(pubErr, messaging.ErrBlocked) {
			level = slog.LevelInfo
		}
		r.logger.Log(ctx, level, "outbox relay: publish failed; retrying",
			"error", pubErr, "messages", len(batch)-len(confirmed), "retry_in", r.config.RetryInterval)
		sleep(ctx, r.config.RetryInterval)
		return true, nil
	}
	return len(batch) == r.config.BatchSize, nil
}

// errLeaseExpired is returned by publish when the lease ran out before a wave: a standby
// may be relaying by now.
var errLeaseExpired = errors.New("lease expired before the batch was published")

// publish publishes batch, wave after wave, while l is held, and returns the ids of the
// messages the broker confirmed. It stops at the first wave that failed, so that nothing
// overtakes a message that was not confirmed.
func (r *Relay) publish(ctx context.Context, batch []row, l *lease) ([]int64, error) {
	var confirmed []int64
	for _, wave := range waves(batch) {
		if !l.held() {
			return confirmed, errLeaseExpired
		}
		ids, err := r.publishByTopic(ctx, wave)
		confirmed = append(confirmed, ids...)
		if err != nil {
			return confirmed, err
		}
	}
	return confirmed, nil
}

// waves splits batch into groups that may each be published all at once, one pipelined
// Publish call per topic, while what must keep its order does: a message goes in the wave
// after the previous message of its correlation id, and in no wave before the previous
// message of its topic. Events of different orders interleave freely, so under load a
// batch is mostly one wave; publishing it message by message in the order stored would
// wait for a confirm whenever the topic changes.
func waves(batch []row) [][]row {
	var out [][]row
	lastOfTopic := map[string]int{}
	lastOfKey := map[string]int{}
	for _, m := range batch {
		w := lastOfTopic[m.topic]
		key := m.metadata[messaging.HeaderCorrelationID]
		if prev, seen := lastOfKey[key]; seen {
			w = max(w, prev+1)
		}
		lastOfTopic[m.topic] = w
		if key != "" {
			lastOfKey[key] = w
		}
		if w == len(out) {
			out = append(out, nil)
		}
		out[w] = append(out[w], m)
	}
	return out
}

// publishByTopic publishes msgs with one Publish call per topic, all at once, and
// returns the ids of the messages the broker confirmed.
func (r *Relay) publishByTopic(ctx context.Context, msgs []row) ([]int64, error) {
	var topics []string
	byTopic := map[string][]row{}
	for _, m := range msgs {
		if _, seen := byTopic[m.topic]; !seen {
			topics = append(topics, m.topic)
		}
		byTopic[m.topic] = append(byTopic[m.topic], m)
	}
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		confirmed []int64
		errs      []error
	)
	for _, topic := range topics {
		wg.Go(func() {
			start := time.Now()
			err := r.out.Publish(topic, messages(ctx, byTopic[topic])...)
			if err == nil {
				r.config.Metrics.confirmed(byTopic[topic], time.Since(start))
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			for _, m := range byTopic[topic] {
				confirmed = append(confirmed, m.id)
			}
		})
	}
	wg.Wait()
	return confirmed, errors.Join(errs...)
}

// messages rebuilds the stored messages, with ctx bounding their publish.
func messages(ctx context.Context, rows []row) []*message.Message {
	msgs := make([]*message.Message, len(rows))
	for i, m := range rows {
		msgs[i] = message.NewMessage(m.uuid, m.payload)
		if m.metadata != nil {
			msgs[i].Metadata = m.metadata
		}
		msgs[i].SetContext(ctx)
	}
	return msgs
}

// sleep waits for d and reports false if ctx was cancelled first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
