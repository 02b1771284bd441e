package chaos

import (
	"context"
	"os"
	"testing"
	"time"
)

// longOutage outlasts every retry window the services have: the router's quick retries
// (under a second), a request's 10 s deadline, request/reply's 2 s. A dependency outage
// pauses the consumers instead of using up a window, so nothing valid may reach a
// dead-letter queue however long it lasts; a minute keeps the suite short. (The package
// tests of analytics and email hold their outages longer than the windows these services
// had before: 2 minutes for a database, about 81 s of SMTP retries.)
const longOutage = 60 * time.Second

// PostgreSQL stops for longer than any retry window: order's API answers 5xx meanwhile
// (the load retries), every consumer pauses with the messages it holds, and all of them
// are handled once the database is back. Nothing is dead-lettered; no order stays pending.
func TestPostgresDownLong(t *testing.T) {
	sc := newScenario(t, "postgres-down-long")
	sc.load.Deadline = longOutage + 3*time.Minute // an order placed at the start is retried throughout
	sc.startLoad()
	sc.fault("postgres stopped, down 60 s, started", func(ctx context.Context) error {
		if err := sc.sys.StopContainer(ctx, "postgres", 10*time.Second); err != nil {
			return err
		}
		sleep(ctx, longOutage)
		if err := sc.sys.StartContainer(ctx, "postgres"); err != nil {
			return err
		}
		return sc.waitReady(ctx, allServices...)
	})
	sc.finish()
}

// The mail server stops answering for longer than any retry window: both email replicas
// pause with the mails they hold (their SMTP sessions time out, which counts as the server
// being down) and send every mail once it answers again; nothing lands in
// order.events.email.dlq. Mailpit is frozen (docker pause) rather than stopped or cut off:
// it keeps its mails in a temporary database that a stop deletes, and a container cut off
// the network loses its published port, through which the reconciliation counts every
// mail of the run.
func TestSMTPDownLong(t *testing.T) {
	// Not yet sound as a whole-system test, so it does not run in make test: frozen
	// mid-session, Mailpit later stores both the mail of the stalled session and its resend
	// (3 of 1,201 orders' mails twice on 2026-12-01), and cutting it off the network instead
	// loses its published API port. The email package's TestSMTPOutageHoldsMailsUntilTheServerReturns
	// proves the behaviour against a real SMTP server. Issue 10 tracks it.
	if os.Getenv("WARREN_CHAOS_SMTP") != "1" {
		t.Skip("smtp-down-long: set WARREN_CHAOS_SMTP=1 to run it; see the comment above")
	}
	sc := newScenario(t, "smtp-down-long")
	sc.startLoad()
	sc.fault("mailpit frozen for 60 s", func(ctx context.Context) error {
		if err := sc.sys.PauseContainer(ctx, "mailpit"); err != nil {
			return err
		}
		sleep(ctx, longOutage)
		if err := sc.sys.UnpauseContainer(ctx, "mailpit"); err != nil {
			return err
		}
		return sc.waitReady(ctx, "email-1", "email-2")
	})
	sc.finish()
}
