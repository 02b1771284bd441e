package outbox

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Leadership among replicas is a lease row (outbox_relay_lease), not a session advisory
// lock. A session lock is held for as long as the server believes the session alive: when
// the leader's host vanishes without closing its TCP connection (a lost VM, a partition),
// that is until the server's TCP gives up, 15 minutes to 2 hours, and no event of the
// service goes out meanwhile. Keepalives or tcp_user_timeout on the server would shorten
// that, but not when the leader sits behind a proxy (PgBouncer, a cloud SQL proxy) that
// keeps the server's socket alive for it. A lease expires on the database's clock whatever
// the network does.
//
// The leader trusts its lease only until the renewal it last saw succeed was sent plus
// LeaseDuration, measured on its own monotonic clock. The database set the expiry later
// than that (at the statement's start), so the leader stops before the row expires and a
// standby can take over, without the two clocks having to agree.

// leaseChannel is the NOTIFY channel a relay signals when it gives its lease up, so that a
// standby takes over at once instead of at its next attempt.
const leaseChannel = "outbox_relay_lease"

const (
	// acquireSQL takes the lease, or renews it, if this holder has it or it has expired.
	// It affects no row while another holder's lease runs.
	acquireSQL = `
INSERT INTO outbox_relay_lease AS l (holder, expires_at)
VALUES ($1, now() + $2 * interval '1 millisecond')
ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE l.holder = excluded.holder OR l.expires_at < now()`
	releaseSQL = `
WITH released AS (
	UPDATE outbox_relay_lease SET expires_at = '-infinity' WHERE holder = $1 RETURNING 1
)
SELECT pg_notify('` + leaseChannel + `', '') FROM released`
)

// errLeaseTaken is returned by a renewal that found another holder: this relay's lease
// expired at the database (a renewal came too late) and a standby took it.
var errLeaseTaken = errors.New("another relay holds the lease")

// lease is one relay's claim to lead. It has a session of its own, so that renewing never
// waits for a batch being relayed on the other.
type lease struct {
	connConfig *pgx.ConnConfig
	holder     string
	config     Config
	logger     *slog.Logger

	conn *pgx.Conn // nil after a failure until the next attempt reconnects

	mu         sync.Mutex
	validUntil time.Time // monotonic: when this relay stops trusting its lease
}

func newLease(connConfig *pgx.ConnConfig, config Config, logger *slog.Logger) *lease {
	host, _ := os.Hostname()
	// The holder names the replica for an operator reading the table; the random part
	// tells apart two relays of one process, or a restarted process with the same pid.
	holder := fmt.Sprintf("%s/%d/%s", host, os.Getpid(), rand.Text()[:8])
	return &lease{connConfig: connConfig, holder: holder, config: config, logger: logger}
}

// acquire returns once this relay holds the lease. While another relay holds it, it stands
// by: it tries again when that relay gives the lease up (a notification) and every
// RenewInterval, which catches a holder that vanished once its lease expires.
func (l *lease) acquire(ctx context.Context) error {
	announced := false
	for {
		err := l.try(ctx, time.Now().Add(l.config.LeaseDuration))
		if err == nil {
			l.logger.InfoContext(ctx, "outbox relay: holding the lease; relaying", "holder", l.holder)
			return nil
		}
		if !errors.Is(err, errLeaseTaken) {
			return err
		}
		if !announced {
			l.logger.InfoContext(ctx, "outbox relay: another replica is relaying; standing by", "holder", l.holder)
			announced = true
		}
		wait, cancel := context.WithTimeout(ctx, l.config.RenewInterval)
		_, err = l.conn.WaitForNotification(wait)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && wait.Err() == nil {
			l.closeConn()
			return fmt.Errorf("wait for the lease: %w", err)
		}
	}
}

// keep renews the lease every RenewInterval until ctx is done, and calls lost once it can
// no longer trust it: a renewal found another holder, or none succeeded before the lease
// ran out. A failed renewal is retried at the next tick while time remains.
func (l *lease) keep(ctx context.Context, lost context.CancelCauseFunc) {
	tick := time.NewTicker(l.config.RenewInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := l.try(ctx, l.until())
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return
		case errors.Is(err, errLeaseTaken) || !l.held():
			lost(fmt.Errorf("lease lost: %w", err))
			return
		default:
			l.logger.WarnContext(ctx, "outbox relay: renewing the lease failed; retrying",
				"error", err, "lease_left", time.Until(l.until()).Round(time.Millisecond))
		}
	}
}

// try takes or renews the lease, waiting for the database no later than deadline (a
// renewal never waits past the lease it is renewing).
func (l *lease) try(ctx context.Context, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if l.conn == nil {
		conn, err := pgx.ConnectConfig(ctx, l.connConfig)
		if err != nil {
			return fmt.Errorf("lease: connect: %w", err)
		}
		if _, err := conn.Exec(ctx, `LISTEN `+leaseChannel); err != nil {
			_ = conn.Close(ctx)
			return fmt.Errorf("lease: listen: %w", err)
		}
		l.conn = conn
	}
	sent := time.Now()
	tag, err := l.conn.Exec(ctx, acquireSQL, l.holder, l.config.LeaseDuration.Milliseconds())
	if err != nil {
		l.closeConn() // a cancelled query leaves the session unusable
		return fmt.Errorf("lease: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return errLeaseTaken
	}
	l.mu.Lock()
	l.validUntil = sent.Add(l.config.LeaseDuration)
	l.mu.Unlock()
	return nil
}

// held reports whether the lease can still be trusted.
func (l *lease) held() bool { return time.Now().Before(l.until()) }

func (l *lease) until() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.validUntil
}

// release gives the lease up, if still held, so that a standby takes over at once, and
// closes the session. It waits for the database for a second at most: a relay that
// cannot reach it leaves the lease to expire.
func (l *lease) release(ctx context.Context) {
	if l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if _, err := l.conn.Exec(ctx, releaseSQL, l.holder); err != nil {
		l.logger.WarnContext(ctx, "outbox relay: releasing the lease failed; it will expire", "error", err)
	}
	l.mu.Lock()
	l.validUntil = time.Time{}
	l.mu.Unlock()
	l.closeConn()
}

func (l *lease) closeConn() {
	if l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = l.conn.Close(ctx) // the session ends either way
	l.conn = nil
}
