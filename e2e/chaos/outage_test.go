package chaos

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/events"
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

// The mail server stops for longer than any retry window: both email replicas find it
// refusing connections (its name gone from Docker's DNS), pause with the mails they hold,
// and send every mail once it is back; nothing lands in order.events.email.dlq. Mailpit
// keeps its mails in its container's file system (MP_DATABASE, see e2e), so the
// reconciliation still counts every mail of the run.
//
// Unavoidable: an SMTP session that the stop cuts after Mailpit stored its mail and before
// its reply reached email leaves email not knowing, and it sends that mail again with the
// same Message-ID (SMTP cannot take part in a transaction). At most the sessions open at
// the stop: two replicas, CONSUMER_CONCURRENCY (8) each.
func TestSMTPDownLong(t *testing.T) {
	sc := newScenario(t, "smtp-down-long")
	sc.unavoidable.resentMails = 2 * 8
	sc.startLoad()
	sc.fault("mailpit stopped, down 60 s, started", func(ctx context.Context) error {
		if err := sc.sys.StopContainer(ctx, "mailpit", 10*time.Second); err != nil {
			return err
		}
		stopped := time.Now()
		// The outage must have been felt, or the scenario proves nothing: both replicas
		// say they are paused, and the email queue holds what they do not take.
		if err := poll(ctx, 30*time.Second, sc.emailPaused); err != nil {
			return fmt.Errorf("with the mail server down: %w", err)
		}
		sleep(ctx, time.Until(stopped.Add(longOutage)))
		if err := sc.sys.StartContainer(ctx, "mailpit"); err != nil {
			return err
		}
		if err := poll(ctx, time.Minute, func() error {
			return call(ctx, "", http.MethodGet, sc.sys.Mailpit.URL()+"/readyz", nil, http.StatusOK, nil)
		}); err != nil {
			return fmt.Errorf("mailpit not ready: %w", err)
		}
		return sc.waitReady(ctx, "email-1", "email-2")
	})
	sc.finish()
}

// emailPaused reports nil once both email replicas answer /readyz with 503 (a paused
// consumer fails readiness) and the email queue has messages ready for nobody.
func (sc *scenario) emailPaused() error {
	for _, e := range sc.sys.Email {
		err := call(sc.t.Context(), "", http.MethodGet, e.OpsURL()+"/readyz", nil, http.StatusServiceUnavailable, nil)
		if err != nil {
			return fmt.Errorf("%s does not report itself paused: %w", e.Name, err)
		}
	}
	queues, err := sc.broker.Queues(sc.t.Context())
	if err != nil {
		return err
	}
	if q := queues[events.QueueEmail]; q.Ready == 0 {
		return fmt.Errorf("%s holds no ready message (%d unacked)", events.QueueEmail, q.Unacked)
	}
	return nil
}
