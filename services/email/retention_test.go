package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/services/email/migrations"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/service"
	"github.com/warrenhq/warren/shared/testkit"
)

// The sweeper runs as the service starts: records of mails claimed longer ago than
// SENT_EMAIL_RETENTION (30 days by default), sent or not, are deleted, younger ones kept,
// and so are the ledger's.
func TestExpiredMailsAreSweptAtStart(t *testing.T) {
	ctx := context.Background()
	url := testkit.SharedPostgres(t).Database(t)
	db, err := postgres.Open(ctx, url, 30*time.Second, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	for _, sql := range []string{
		`INSERT INTO sent_emails (message_id, order_id, kind, recipient, subject, status, sent_at, claimed_at) VALUES
			('expired-sent', 'o', 'received', 'a@example.com', 's', 'sent', now() - interval '31 days', now() - interval '31 days'),
			('expired-sending', 'o', 'received', 'a@example.com', 's', 'sending', NULL, now() - interval '31 days'),
			('kept', 'o', 'received', 'a@example.com', 's', 'sent', now() - interval '29 days', now() - interval '29 days')`,
		`INSERT INTO processed_messages (consumer, message_id, processed_at) VALUES
			('q', 'expired', now() - interval '31 days'), ('q', 'kept', now() - interval '29 days')`,
	} {
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	_, addr := startSMTPSink(t, "127.0.0.1:0")
	startService(t, "email", events.Topology(events.DefaultSMSRegions), map[string]string{"SMTP_ADDR": addr, "DATABASE_URL": url})

	left := func(sql string) int {
		var n int
		if err := db.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	testkit.Eventually(t, 20*time.Second, func() string {
		if n := left(`SELECT count(*) FROM sent_emails WHERE message_id LIKE 'expired%'`) +
			left(`SELECT count(*) FROM processed_messages WHERE message_id = 'expired'`); n > 0 {
			return fmt.Sprintf("%d expired rows left", n)
		}
		return ""
	})
	if n := left(`SELECT count(*) FROM sent_emails WHERE message_id = 'kept'`) +
		left(`SELECT count(*) FROM processed_messages WHERE message_id = 'kept'`); n != 2 {
		t.Errorf("%d of the 2 rows younger than the retention left", n)
	}
}

// A mail's record kept less long than the ledger's would let a redelivery the ledger still
// accepts find no record of its mail: the service refuses to start.
func TestMailRecordsMustOutliveTheLedger(t *testing.T) {
	t.Setenv("LEDGER_RETENTION", "1000h")
	if _, err := service.LoadConfig[Config](slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "SENT_EMAIL_RETENTION") {
		t.Errorf("SENT_EMAIL_RETENTION shorter than LEDGER_RETENTION: %v, want a configuration error naming it", err)
	}
}
