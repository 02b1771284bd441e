package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/warrenhq/warren/services/sms/migrations"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/testkit"
)

// The sweeper runs as the service starts: texts sent longer ago than SENT_TEXT_RETENTION
// (30 days by default) are deleted, younger ones kept, and so are the ledger's records.
func TestExpiredTextsAreSweptAtStart(t *testing.T) {
	ctx := context.Background()
	url := testkit.SharedPostgres(t).Database(t)
	db, err := postgres.Open(ctx, url, 30*time.Second, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	for _, sql := range []string{
		`INSERT INTO sent_texts (message_id, order_id, recipient, body, sent_at) VALUES
			('expired', 'o', '+44', 'b', now() - interval '31 days'), ('kept', 'o', '+44', 'b', now() - interval '29 days')`,
		`INSERT INTO processed_messages (consumer, message_id, processed_at) VALUES
			('q', 'expired', now() - interval '31 days'), ('q', 'kept', now() - interval '29 days')`,
	} {
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	startService(t, "sms", events.Topology(events.DefaultSMSRegions), map[string]string{"DATABASE_URL": url})

	left := func(id string) int {
		var n int
		err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM sent_texts WHERE message_id = $1) +
			(SELECT count(*) FROM processed_messages WHERE message_id = $1)`, id).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	testkit.Eventually(t, 20*time.Second, func() string {
		if n := left("expired"); n > 0 {
			return fmt.Sprintf("%d expired rows left", n)
		}
		return ""
	})
	if n := left("kept"); n != 2 {
		t.Errorf("%d of the 2 rows younger than the retention left", n)
	}
}
