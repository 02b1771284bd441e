package mailing

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warrenhq/warren/services/email/migrations"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/testkit"
)

// statements records the SQL of every statement a pool sends, BEGIN and COMMIT included:
// each is one round trip to the database.
type statements struct {
	mu  sync.Mutex
	sql []string
}

func (s *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sql = append(s.sql, data.SQL)
	return ctx
}

func (s *statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// take returns the statements recorded since the last take.
func (s *statements) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sql
	s.sql = nil
	return out
}

// newTestHandlers returns Handlers on a fresh, migrated database whose statements are
// recorded, sending to Mailpit.
func newTestHandlers(t *testing.T, mp *testkit.Mailpit) (*Handlers, *statements) {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(testkit.SharedPostgres(t).Database(t))
	if err != nil {
		t.Fatal(err)
	}
	recorded := &statements{}
	cfg.ConnConfig.Tracer = recorded
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Migrate(ctx, pool, migrations.FS); err != nil {
		t.Fatal(err)
	}
	ledger, err := postgres.NewLedger(postgres.LedgerConfig{LedgerRetention: 720 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sender := newTestSender(t, SMTPConfig{Addr: mp.SMTPAddr})
	recorded.take()
	return NewHandlers(pool, ledger, NewStore(pool), sender, slog.New(slog.DiscardHandler)), recorded
}

// A mail costs four round trips to the database: the claim, then BEGIN, the take and
// COMMIT (before: eight). A redelivery of its message sends nothing.
func TestMailCostsFourRoundTrips(t *testing.T) {
	mp := testkit.OwnMailpit(t, testkit.MailpitOptions{})
	h, recorded := newTestHandlers(t, mp)
	ctx := context.Background()
	m := mailTo("ada@example.com")
	msg := message.NewMessage("m-1", nil)
	msg.Metadata.Set(messaging.HeaderOccurredAt, time.Now().UTC().Format(time.RFC3339Nano))

	if err := h.send(ctx, msg, m); err != nil {
		t.Fatal(err)
	}
	if got := recorded.take(); len(got) != 4 {
		t.Errorf("a mail took %d round trips, want 4:\n%q", len(got), got)
	}
	if err := h.send(ctx, msg, m); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	wantOnce(t, mp, m.To)
	var status Status
	if err := h.pool.QueryRow(ctx, `SELECT status FROM sent_emails WHERE message_id = 'm-1'`).Scan(&status); err != nil || status != StatusSent {
		t.Errorf("row status %q (%v), want sent", status, err)
	}
}

// A message older than the ledger's horizon that the ledger has no record of is refused
// (postgres.ErrBeyondHorizon) and leaves nothing behind: no ledger record, no claim, no mail.
// One the ledger has a record of is a duplicate, as any other.
func TestMessageBeyondTheHorizonIsLeftToTheLedger(t *testing.T) {
	mp := testkit.OwnMailpit(t, testkit.MailpitOptions{})
	h, _ := newTestHandlers(t, mp)
	ctx := context.Background()
	old := message.NewMessage("m-old", nil)
	old.Metadata.Set(messaging.HeaderOccurredAt, time.Now().Add(-700*time.Hour).UTC().Format(time.RFC3339Nano))

	if err := h.send(ctx, old, mailTo("old@example.com")); !errors.Is(err, postgres.ErrBeyondHorizon) {
		t.Fatalf("err = %v, want ErrBeyondHorizon", err)
	}
	var rows int
	if err := h.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM processed_messages) + (SELECT count(*) FROM sent_emails)`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("%d rows left behind (%v), want none", rows, err)
	}

	// Recorded (and sent) when it was young: a duplicate now.
	if _, err := h.pool.Exec(ctx, `INSERT INTO processed_messages (consumer, message_id) VALUES ($1, 'm-old')`, events.QueueEmail); err != nil {
		t.Fatal(err)
	}
	if err := h.send(ctx, old, mailTo("old@example.com")); err != nil {
		t.Fatalf("old duplicate: %v", err)
	}
	if got := mp.Subjects(t, "old@example.com"); !slices.Equal(got, []string(nil)) {
		t.Errorf("mailpit caught %v, want nothing", got)
	}
}
