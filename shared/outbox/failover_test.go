package outbox_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/outbox"
	"github.com/warrenhq/warren/shared/testkit"
)

// When the relaying replica's host vanishes (its database connections go silent, and
// neither end sees them close), a standby publishes what is stored after that within 15
// s, each message exactly once, with the default settings. A session advisory lock would
// stay with the vanished session for as long as the server's TCP believes it alive.
func TestStandbyRelaysWithinSecondsWhenTheLeaderVanishes(t *testing.T) {
	e := newEnv(t, testkit.SharedRabbitMQ(t).VHost(t))
	ctx := context.Background()

	// The leader reaches the database only through a proxy the test can cut.
	cfg := e.pool.Config()
	proxy := newBlackhole(t, net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))))
	cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Fallbacks = proxy.host, proxy.port, nil
	leaderPool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(leaderPool.Close)
	t.Cleanup(proxy.close) // before the pool closes, so that nothing waits on a silent socket
	leader, err := outbox.NewRelay(ctx, leaderPool, e.broker.Publisher(), outbox.Config{}, e.logger)
	if err != nil {
		t.Fatal(err)
	}
	run(t, leader)
	e.store(ctx, t, true, "warm-up")
	e.receive(t, 1, 20*time.Second) // only the leader runs: it holds the lease
	e.start(t, outbox.Config{})     // the standby, connected directly

	var before []string
	for i := range 10 {
		batch := seq(fmt.Sprintf("before-%d-", i), 0, 3)
		e.store(ctx, t, true, batch...)
		before = append(before, batch...)
	}
	e.assertOnce(ctx, t, before, "before the cut")

	proxy.cut()
	cutAt := time.Now()
	var after []string
	for i := range 10 {
		batch := seq(fmt.Sprintf("after-%d-", i), 0, 3)
		e.store(ctx, t, true, batch...)
		after = append(after, batch...)
	}
	got := map[string]int{}
	for len(got) < len(after) && time.Since(cutAt) < 15*time.Second {
		d, ok, err := e.ch.Get(events.QueueInventory, true)
		switch {
		case err != nil:
			t.Fatal(err)
		case ok:
			got[d.CorrelationId]++
		default:
			time.Sleep(25 * time.Millisecond)
		}
	}
	if len(got) < len(after) {
		t.Fatalf("%d of %d messages stored after the cut published within 15 s", len(got), len(after))
	}
	t.Logf("all %d messages stored after the cut published %s after it", len(after), time.Since(cutAt).Round(100*time.Millisecond))
	// Anything published twice arrives before a sentinel stored now.
	sentinel := "sentinel"
	e.store(ctx, t, true, sentinel)
	for {
		d := testkit.Get(t, e.ch, events.QueueInventory, 30*time.Second)
		if d.CorrelationId == sentinel {
			break
		}
		got[d.CorrelationId]++
	}
	for _, label := range after {
		if got[label] != 1 {
			t.Errorf("%s published %d times, want once", label, got[label])
		}
	}
	if len(got) != len(after) {
		t.Errorf("%d distinct messages after the cut, want %d", len(got), len(after))
	}
}

// blackhole is a TCP proxy that can stop forwarding in both directions without closing
// either socket: to each end, the other has vanished (a lost host, a partition) while a
// proxy or the kernel keeps the socket alive.
type blackhole struct {
	host     string
	port     uint16
	upstream string
	ln       net.Listener
	cutOnce  sync.Once
	cutC     chan struct{}

	mu    sync.Mutex
	conns []net.Conn
}

func newBlackhole(t *testing.T, upstream string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	b := &blackhole{host: addr.IP.String(), port: uint16(addr.Port), upstream: upstream, ln: ln, cutC: make(chan struct{})}
	go b.accept()
	return b
}

func (b *blackhole) accept() {
	for {
		client, err := b.ln.Accept()
		if err != nil {
			return // closed
		}
		b.track(client)
		go b.serve(client)
	}
}

func (b *blackhole) serve(client net.Conn) {
	if b.isCut() {
		return // a connection made after the cut is held open and gets nowhere
	}
	server, err := net.Dial("tcp", b.upstream)
	if err != nil {
		_ = client.Close()
		return
	}
	b.track(server)
	go b.pipe(server, client)
	go b.pipe(client, server)
}

// pipe forwards src to dst until either closes (then it closes both) or the cut (then it
// stops reading and leaves both open).
func (b *blackhole) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if b.isCut() {
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			_ = src.Close()
			_ = dst.Close()
			return
		}
	}
}

func (b *blackhole) track(c net.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.conns = append(b.conns, c)
}

func (b *blackhole) cut() { b.cutOnce.Do(func() { close(b.cutC) }) }

func (b *blackhole) isCut() bool {
	select {
	case <-b.cutC:
		return true
	default:
		return false
	}
}

// close closes the listener and every socket, cut or not.
func (b *blackhole) close() {
	_ = b.ln.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		_ = c.Close()
	}
}
