package outbox_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/propagation"
	"golang.org/x/time/rate"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/outbox"
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/testkit"
)

// The benchmarks compare the previous outbox (watermill-sql + Watermill's forwarder, see
// forwarder_test.go) with this one in the same process, against one broker and one
// database server. Each message is a 512-byte OrderPlaced-sized event in its own
// transaction, on one of the order service's topics (the fanout and three routing keys of
// the topic exchange). Run them with
//
//	go test -run '^$' -bench . -benchtime 5000x ./outbox
//
//   - BenchmarkRelay: messages/s from committed rows (a backlog of b.N) to confirmed at the
//     broker.
//   - BenchmarkFlow: 8 writers commit b.N messages at 1,000 a second (flowRate) while the
//     relay runs; messages/s until the last is confirmed, and the latency from a message's
//     commit to its confirm (p50, p99).
//   - BenchmarkStore: 8 writers commit b.N messages as fast as they can, no relay running;
//     messages/s. It shows what storing costs the service's transactions (this outbox
//     notifies the relay at commit, which PostgreSQL serialises).
//
// Consecutive messages go to different topics, as the order service's do (an OrderPlaced,
// then some other order's confirmation), each with its own correlation id. The
// "x-forwarder" metric is the ratio to the forwarder's run of the same benchmark.

var benchTopics = []string{
	messaging.Topic(events.ExchangeOrderEvents, ""),
	messaging.Topic(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope)),
	messaging.Topic(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionAsia)),
	messaging.Topic(events.ExchangeTopic, events.OrderRejectedKey(events.RegionAmericas)),
}

var benchPayload = fmt.Appendf(nil, `{"order_id":"o","region":"europe","items":[{"sku":"carrot-seeds","quantity":1}],"pad":%q}`, make([]byte, 420))

type storeFunc func(ctx context.Context, tx pgx.Tx, p propagation.TextMapPropagator, topic string, msgs ...*message.Message) error

// variant is one outbox: how it stores, and how its relay is started.
type variant struct {
	name  string
	store storeFunc
	start func(b *testing.B, e *env, out message.Publisher) (stop func())
}

var variants = []variant{
	{name: "forwarder", store: forwarderStore, start: func(b *testing.B, e *env, out message.Publisher) func() {
		fwd, err := newForwarder(e.pool, out, e.logger)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = fwd.Run(ctx); close(done) }()
		<-fwd.Running()
		return func() { cancel(); <-done }
	}},
	{name: "batching", store: outbox.Store, start: func(b *testing.B, e *env, out message.Publisher) func() {
		relay, err := outbox.NewRelay(context.Background(), e.pool, out, outbox.Config{}, e.logger)
		if err != nil {
			b.Fatal(err)
		}
		return run(b, relay)
	}},
}

// confirmCounter counts the messages the broker confirmed and notes when.
type confirmCounter struct {
	next      message.Publisher
	want      int64
	n         atomic.Int64
	all       chan struct{}
	confirmed sync.Map // uuid -> time.Time
}

func newConfirmCounter(next message.Publisher, want int) *confirmCounter {
	return &confirmCounter{next: next, want: int64(want), all: make(chan struct{})}
}

func (c *confirmCounter) Publish(topic string, msgs ...*message.Message) error {
	if err := c.next.Publish(topic, msgs...); err != nil {
		return err
	}
	now := time.Now()
	for _, msg := range msgs {
		c.confirmed.LoadOrStore(msg.UUID, now)
	}
	if c.n.Add(int64(len(msgs))) >= c.want && c.n.Load()-int64(len(msgs)) < c.want {
		close(c.all)
	}
	return nil
}

func (c *confirmCounter) Close() error { return nil }

func (c *confirmCounter) wait(b *testing.B) {
	select {
	case <-c.all:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d messages confirmed", c.n.Load(), c.want)
	}
}

// storeAll stores n messages, one per transaction, from writers goroutines, at most
// limit a second, and returns when each committed (by message uuid).
func storeAll(b *testing.B, e *env, store storeFunc, n, writers int, limit rate.Limit) map[string]time.Time {
	limiter := rate.NewLimiter(limit, writers)
	ctx := context.Background()
	next := atomic.Int64{}
	var mu sync.Mutex
	committed := make(map[string]time.Time, n)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				_ = limiter.Wait(ctx)
				msg := message.NewMessage(fmt.Sprint("m-", i), benchPayload)
				msg.Metadata.Set(messaging.HeaderType, events.TypeOrderPlaced)
				msg.Metadata.Set(messaging.HeaderCorrelationID, fmt.Sprint("o-", i))
				err := postgres.InTx(ctx, e.pool, func(tx pgx.Tx) error {
					return store(ctx, tx, propagation.TraceContext{}, benchTopics[i%int64(len(benchTopics))], msg)
				})
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				committed[msg.UUID] = time.Now()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return committed
}

// baselines holds each benchmark's forwarder rate, for the ratio.
var baselines sync.Map

func report(b *testing.B, v variant, rate float64) {
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(0, "ns/op")
	key := b.Name()[:len(b.Name())-len(v.name)]
	if v.name == "forwarder" {
		baselines.Store(key, rate)
	} else if base, ok := baselines.Load(key); ok {
		b.ReportMetric(rate/base.(float64), "x-forwarder")
	}
}

func BenchmarkRelay(b *testing.B) {
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			e := newEnv(b, testkit.SharedRabbitMQ(b).VHost(b))
			out := newConfirmCounter(e.broker.Publisher(), b.N)
			stop := v.start(b, e, out)
			stop() // it created its tables; now the backlog
			out.n.Store(0)
			storeAll(b, e, v.store, b.N, 8, rate.Inf)
			b.ResetTimer()
			stop = v.start(b, e, out)
			out.wait(b)
			b.StopTimer()
			stop()
			report(b, v, float64(b.N)/b.Elapsed().Seconds())
		})
	}
}

const flowRate = 1000

func BenchmarkStore(b *testing.B) {
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			e := newEnv(b, testkit.SharedRabbitMQ(b).VHost(b))
			v.start(b, e, e.broker.Publisher())() // creates its tables
			b.ResetTimer()
			storeAll(b, e, v.store, b.N, 8, rate.Inf)
			b.StopTimer()
			report(b, v, float64(b.N)/b.Elapsed().Seconds())
		})
	}
}

func BenchmarkFlow(b *testing.B) {
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			e := newEnv(b, testkit.SharedRabbitMQ(b).VHost(b))
			out := newConfirmCounter(e.broker.Publisher(), b.N)
			stop := v.start(b, e, out)
			b.ResetTimer()
			committed := storeAll(b, e, v.store, b.N, 8, flowRate)
			out.wait(b)
			b.StopTimer()
			stop()
			report(b, v, float64(b.N)/b.Elapsed().Seconds())
			var latencies []time.Duration
			out.confirmed.Range(func(uuid, at any) bool {
				latencies = append(latencies, at.(time.Time).Sub(committed[uuid.(string)]))
				return true
			})
			slices.Sort(latencies)
			for _, p := range []int{50, 99} {
				b.ReportMetric(float64(latencies[len(latencies)*p/100].Microseconds())/1000, fmt.Sprintf("p%d-ms", p))
			}
		})
	}
}
