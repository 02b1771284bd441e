package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warrenhq/warren/services/email/internal/mailing"
	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

var (
	ada = events.Customer{Name: "Ada", Email: "ada@example.com", Phone: "+441234567"}
	bo  = events.Customer{Name: "Bo", Email: "bo@example.com", Phone: "+15550100"}
)

func placed(orderID string, c events.Customer) events.OrderPlaced {
	return events.OrderPlaced{OrderID: orderID, Customer: c, Region: events.RegionEurope, TotalCents: 1250,
		Items: []events.Item{{SKU: "carrot-seeds", Quantity: 2, UnitPriceCents: 625}}, PlacedAt: time.Now().UTC()}
}

func confirmed(orderID string, c events.Customer) events.OrderConfirmed {
	return events.OrderConfirmed{OrderID: orderID, Region: events.RegionEurope, Customer: c, TotalCents: 1250}
}

// startEmail starts the service with an SMTP sink and returns both.
func startEmail(t *testing.T) (*harness, *smtpSink) {
	sink, addr := startSMTPSink(t, "127.0.0.1:0")
	return startService(t, "email", events.Topology(events.DefaultSMSRegions), map[string]string{"SMTP_ADDR": addr}), sink
}

// startEmailOnDB is startEmail on a database the test reaches too, returned as a pool.
func startEmailOnDB(t *testing.T) (*harness, *smtpSink, *pgxpool.Pool) {
	url := testkit.SharedPostgres(t).Database(t)
	sink, addr := startSMTPSink(t, "127.0.0.1:0")
	h := startService(t, "email", events.Topology(events.DefaultSMSRegions), map[string]string{"SMTP_ADDR": addr, "DATABASE_URL": url})
	db, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return h, sink, db
}

// exec runs sql on db, failing the test on an error.
func exec(t *testing.T, db *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := db.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// claim writes what a handler that crashed between the SMTP send and the confirm leaves:
// the message marked processed, its mail claimed and still "sending".
func claim(t *testing.T, db *pgxpool.Pool, messageID, orderID string, c events.Customer) {
	t.Helper()
	exec(t, db, `INSERT INTO processed_messages (consumer, message_id) VALUES ($1, $2)`, events.QueueEmail, messageID)
	exec(t, db, `INSERT INTO sent_emails (message_id, order_id, kind, recipient, subject, status)
		VALUES ($1, $2, 'confirmed', $3, 'Your order '||$2||' is confirmed', 'sending')`, messageID, orderID, c.Email)
}

// status is the status of the mail of messageID, and whether it has a sent_at.
func status(t *testing.T, db *pgxpool.Pool, messageID string) (string, bool) {
	t.Helper()
	var s string
	var sentAt *time.Time
	if err := db.QueryRow(context.Background(), `SELECT status, sent_at FROM sent_emails WHERE message_id = $1`, messageID).Scan(&s, &sentAt); err != nil {
		t.Fatalf("status of %s: %v", messageID, err)
	}
	return s, sentAt != nil
}

// sentEmails is GET /emails.
func (h *harness) sentEmails(orderID string) []mailing.SentEmail {
	var body struct{ Emails []mailing.SentEmail }
	h.GetJSON("/emails?order_id="+orderID, &body)
	return body.Emails
}

// waitSent waits until GET /emails lists n mails for orderID. A mail is listed only once
// the SMTP server accepted it, so the sink has it by then.
func (h *harness) waitSent(orderID string, n int) []mailing.SentEmail {
	h.T.Helper()
	var sent []mailing.SentEmail
	testkit.Eventually(h.T, 30*time.Second, func() string {
		sent = h.sentEmails(orderID)
		if len(sent) != n {
			return fmt.Sprintf("%d mails sent for %q, want %d: %+v", len(sent), orderID, n, sent)
		}
		return ""
	})
	return sent
}

func TestMailPerOrderEvent(t *testing.T) {
	h, sink := startEmail(t)
	ids := map[string]string{"placed": "m-placed", "confirmed": "m-confirmed", "rejected": "m-rejected", "cancelled": "m-cancelled"}
	h.PublishFanout(events.TypeOrderPlaced, ids["placed"], placed("o-1", ada))
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, ids["confirmed"], confirmed("o-1", ada))
	h.Publish(events.ExchangeTopic, events.OrderRejectedKey(events.RegionAsia), events.TypeOrderRejected, ids["rejected"],
		events.OrderRejected{OrderID: "o-2", Region: events.RegionAsia, Customer: bo, Reason: "rare-orchid is out of stock"})
	h.PublishFanout(events.TypeOrderCancelled, ids["cancelled"],
		events.OrderCancelled{OrderID: "o-1", Region: events.RegionEurope, Customer: ada, Reason: "changed my mind"})

	kinds := func(sent []mailing.SentEmail) []mailing.Kind {
		var out []mailing.Kind
		for _, s := range sent {
			out = append(out, s.Kind)
		}
		slices.Sort(out)
		return out
	}
	if got, want := kinds(h.waitSent("o-1", 3)), []mailing.Kind{mailing.KindCancelled, mailing.KindConfirmed, mailing.KindReceived}; !slices.Equal(got, want) {
		t.Errorf("o-1 mail kinds = %v, want %v", got, want)
	}
	if sent := h.waitSent("o-2", 1); sent[0].Kind != mailing.KindRejected || sent[0].Recipient != bo.Email {
		t.Errorf("o-2 mail = %+v, want a rejection to %s", sent[0], bo.Email)
	}

	want := map[string]struct{ to, subject string }{
		ids["placed"]:    {ada.Email, "We received your order o-1"},
		ids["confirmed"]: {ada.Email, "Your order o-1 is confirmed"},
		ids["rejected"]:  {bo.Email, "Your order o-2 could not be fulfilled"},
		ids["cancelled"]: {ada.Email, "Your order o-1 was cancelled"},
	}
	mails := sink.received()
	if len(mails) != len(want) {
		t.Fatalf("sink received %d mails, want %d", len(mails), len(want))
	}
	for _, m := range mails {
		id := strings.TrimSuffix(strings.TrimPrefix(m.Header.Get("Message-Id"), "<"), "@warren.example>")
		w, ok := want[id]
		if !ok {
			t.Errorf("unexpected mail with Message-ID %q", m.Header.Get("Message-Id"))
			continue
		}
		delete(want, id)
		if !slices.Equal(m.To, []string{w.to}) || m.Header.Get("Subject") != w.subject {
			t.Errorf("mail %s: to %v subject %q; want to %s subject %q", id, m.To, m.Header.Get("Subject"), w.to, w.subject)
		}
		if m.From != "orders@warren.example" {
			t.Errorf("mail %s: envelope from %q", id, m.From)
		}
	}
	if rejected := mailBody(mails, "could not be fulfilled"); !strings.Contains(rejected, "Reason: rare-orchid is out of stock") {
		t.Errorf("rejection mail lacks its reason:\n%s", rejected)
	}
}

func TestRedeliveredEventSendsOneMail(t *testing.T) {
	h, sink := startEmail(t)
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-dup", confirmed("o-1", ada))
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-dup", confirmed("o-1", ada))
	// The queue has one consumer, so once a later message is handled both copies were.
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-barrier", confirmed("o-2", bo))
	h.waitSent("o-2", 1)

	h.waitSent("o-1", 1)
	if n := len(sink.received()); n != 2 {
		t.Errorf("sink received %d mails, want 2 (one per distinct message)", n)
	}
}

// A delivery that finds its message claimed but unconfirmed (an earlier attempt crashed
// between the send and the confirm) sends the mail again, once, and confirms it.
func TestClaimedButUnconfirmedMailIsSentOnRedelivery(t *testing.T) {
	h, sink, db := startEmailOnDB(t)
	claim(t, db, "m-crashed", "o-1", ada)
	if sent := h.sentEmails("o-1"); len(sent) != 0 {
		t.Fatalf("an unconfirmed mail is listed as sent: %+v", sent)
	}

	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-crashed", confirmed("o-1", ada))
	h.waitSent("o-1", 1)
	if s, hasSentAt := status(t, db, "m-crashed"); s != "sent" || !hasSentAt {
		t.Errorf("row status %q (sent_at set: %v), want sent with a sent_at", s, hasSentAt)
	}
	// Once confirmed, a further redelivery sends nothing.
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-crashed", confirmed("o-1", ada))
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-barrier", confirmed("o-2", bo))
	h.waitSent("o-2", 1)
	if n := len(sink.received()); n != 2 {
		t.Errorf("sink received %d mails, want 2 (the unconfirmed one once, the barrier)", n)
	}
}

// A replica handed a message whose mail another replica is sending waits on the row lock,
// then finds the mail sent and sends nothing. The test plays the other replica.
func TestRedeliveryWaitsForTheReplicaSending(t *testing.T) {
	h, sink, db := startEmailOnDB(t)
	ctx := context.Background()
	claim(t, db, "m-1", "o-1", ada)
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	if _, err := tx.Exec(ctx, `SELECT FROM sent_emails WHERE message_id = 'm-1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}

	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-1", confirmed("o-1", ada))
	testkit.Eventually(t, 10*time.Second, func() string {
		var waiting int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil || waiting == 0 {
			return fmt.Sprintf("the service does not wait on the row lock (%d waiting, %v)", waiting, err)
		}
		return ""
	})
	if _, err := tx.Exec(ctx, `UPDATE sent_emails SET status = 'sent', sent_at = now() WHERE message_id = 'm-1'`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-barrier", confirmed("o-2", bo))
	h.waitSent("o-2", 1)
	if n := len(sink.received()); n != 1 {
		t.Errorf("sink received %d mails, want 1 (the barrier only)", n)
	}
}

// A confirm that fails after the send is retried in place, not by failing the handler: a
// retry of the handler would send the mail again. A trigger makes the confirm fail when it
// commits, as a database restart during the send would, until the test lifts it. (The
// trigger is deferred to the commit: the statement that locks the row before the send
// already marks it sent, and only the commit confirms.)
func TestFailedConfirmIsRetriedWithoutResending(t *testing.T) {
	h, sink, db := startEmailOnDB(t)
	exec(t, db, `CREATE SEQUENCE confirm_attempts`)
	exec(t, db, `CREATE TABLE confirm_blocked ()`)
	exec(t, db, `INSERT INTO confirm_blocked DEFAULT VALUES`)
	exec(t, db, `CREATE FUNCTION block_confirm() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.status = 'sent' AND EXISTS (SELECT FROM confirm_blocked) THEN
				PERFORM nextval('confirm_attempts'); -- not transactional: survives the exception
				RAISE EXCEPTION 'confirm blocked by the test';
			END IF;
			RETURN NEW;
		END $$`)
	exec(t, db, `CREATE CONSTRAINT TRIGGER block_confirm AFTER UPDATE ON sent_emails
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION block_confirm()`)

	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-1", confirmed("o-1", ada))
	testkit.Eventually(t, 20*time.Second, func() string {
		var attempts int64
		if err := db.QueryRow(context.Background(),
			`SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM confirm_attempts`).Scan(&attempts); err != nil || attempts < 4 {
			return fmt.Sprintf("%d confirm attempts so far (%v), want 4", attempts, err)
		}
		return ""
	})
	if n := len(sink.received()); n != 1 {
		t.Errorf("sink received %d mails while the confirm failed, want 1", n)
	}
	if sent := h.sentEmails("o-1"); len(sent) != 0 {
		t.Errorf("an unconfirmed mail is listed as sent: %+v", sent)
	}

	exec(t, db, `DELETE FROM confirm_blocked`)
	h.waitSent("o-1", 1)
	if n := len(sink.received()); n != 1 {
		t.Errorf("sink received %d mails, want 1", n)
	}
	if n := failedAttempts(h.Metrics()); n != 0 {
		t.Errorf("the handler failed %d times; the confirm must be retried inside it", n)
	}
}

// The mail server stops for 20 s while five orders' events (ten mails) arrive: far longer
// than the router's retries of a failed handler last (well under a second). No mail is
// given up on: the consumer pauses at the first failed send, says so in /readyz and
// warren_consumer_paused, and once the server is back sends every mail exactly once.
func TestSMTPOutageHoldsMailsUntilTheServerReturns(t *testing.T) {
	const orders = 5
	sink, addr := startSMTPSink(t, "127.0.0.1:0")
	h := startService(t, "email", events.Topology(events.DefaultSMSRegions), map[string]string{"SMTP_ADDR": addr})
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-before", confirmed("o-before", ada))
	h.waitSent("o-before", 1)

	sink.stop()
	down := time.Now()
	for i := range orders {
		id := fmt.Sprintf("o-%d", i)
		h.PublishFanout(events.TypeOrderPlaced, "m-placed-"+id, placed(id, ada))
		h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-confirmed-"+id, confirmed(id, bo))
	}
	testkit.Eventually(t, 20*time.Second, func() string {
		if v := metricValue(h.Metrics(), `warren_consumer_paused{queue="order.events.email"}`); v != "1" {
			return "warren_consumer_paused is " + v + ", want 1"
		}
		return ""
	})
	status, body := getReadyz(t, h)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, events.QueueEmail) || !strings.Contains(body, "smtp unavailable") {
		t.Errorf("/readyz while the mail server is down: %d %s; want 503 naming %s and smtp", status, body, events.QueueEmail)
	}
	time.Sleep(20*time.Second - time.Since(down))
	if n := testkit.Depth(t, h.Ch, messaging.DeadLetterQueueName(events.QueueEmail)); n != 0 {
		t.Fatalf("%d messages dead-lettered during the outage, want none", n)
	}

	sink, _ = startSMTPSink(t, addr)
	for i := range orders {
		h.waitSent(fmt.Sprintf("o-%d", i), 2)
	}
	if n := len(sink.received()); n != 2*orders {
		t.Errorf("the mail server received %d mails after its return, want %d (each once)", n, 2*orders)
	}
	if n := testkit.Depth(t, h.Ch, messaging.DeadLetterQueueName(events.QueueEmail)); n != 0 {
		t.Errorf("%d messages dead-lettered, want none", n)
	}
	testkit.Eventually(t, 10*time.Second, func() string {
		if status, body := getReadyz(t, h); status != http.StatusOK {
			return fmt.Sprintf("/readyz %d %s after the outage", status, body)
		}
		return ""
	})
	if v := metricValue(h.Metrics(), `warren_consumer_paused{queue="order.events.email"}`); v != "0" {
		t.Errorf("warren_consumer_paused is %s after the outage, want 0", v)
	}
}

// getReadyz returns GET /readyz's status and body, whatever the status.
func getReadyz(t *testing.T, h *harness) (int, string) {
	t.Helper()
	resp, err := http.Get(h.OpsURL + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue is the value of the sample named series (name and labels) in a /metrics
// text, or "" when there is none.
func metricValue(metrics, series string) string {
	for line := range strings.Lines(metrics) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			return v
		}
	}
	return ""
}

func TestMalformedEventIsDeadLettered(t *testing.T) {
	h, sink := startEmail(t)
	h.PublishRaw(events.ExchangeOrderEvents, "", events.TypeOrderPlaced, "m-bad", []byte(`{"order_id": "o-1", `))
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-good", confirmed("o-2", bo))
	h.waitSent("o-2", 1)

	dead := testkit.Get(t, h.Ch, messaging.DeadLetterQueueName(events.QueueEmail), 10*time.Second)
	reason, _ := dead.Headers[messaging.HeaderDeadLetterReason].(string)
	if dead.MessageId != "m-bad" || !strings.Contains(reason, "decode") {
		t.Errorf("dead letter %q with reason %q; want m-bad with a decode error", dead.MessageId, reason)
	}
	if n := len(sink.received()); n != 1 {
		t.Errorf("sink received %d mails, want 1", n)
	}
	if sent := h.sentEmails("o-1"); len(sent) != 0 {
		t.Errorf("mail sent for the malformed event: %+v", sent)
	}
}

func mailBody(mails []sunkMail, subjectPart string) string {
	for _, m := range mails {
		if strings.Contains(m.Header.Get("Subject"), subjectPart) {
			return m.Body
		}
	}
	return ""
}

// failedAttempts reads the failed-attempt counter of the email queue from /metrics.
func failedAttempts(metrics string) int {
	prefix := `warren_messages_failed_total{queue="order.events.email",type="order.confirmed.v1"} `
	for line := range strings.Lines(metrics) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// With the default concurrency, several mails are sent at once, on several SMTP sessions:
// every one arrives once, to its own recipient.
func TestConcurrentHandlingSendsEachMailOnce(t *testing.T) {
	const orders = 24
	sink, addr := startSMTPSink(t, "127.0.0.1:0")
	h := startService(t, "email", events.Topology(events.DefaultSMSRegions),
		map[string]string{"SMTP_ADDR": addr, "CONSUMER_CONCURRENCY": "8"})
	want := map[string]string{} // Message-ID → recipient
	for i := range orders {
		c := events.Customer{Name: fmt.Sprintf("C%d", i), Email: fmt.Sprintf("c%d@example.com", i), Phone: "+441234567"}
		id := fmt.Sprintf("m-%d", i)
		want["<"+id+"@warren.example>"] = c.Email
		h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, id, confirmed(fmt.Sprintf("o-%d", i), c))
	}
	testkit.Eventually(t, 30*time.Second, func() string {
		if n := len(sink.received()); n < orders {
			return fmt.Sprintf("%d of %d mails received", n, orders)
		}
		return ""
	})
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive right behind
	mails := sink.received()
	if len(mails) != orders {
		t.Errorf("%d mails received, want %d", len(mails), orders)
	}
	for _, m := range mails {
		id := m.Header.Get("Message-Id")
		to, ok := want[id]
		if !ok {
			t.Errorf("unexpected or repeated mail %q", id)
			continue
		}
		delete(want, id)
		if !slices.Equal(m.To, []string{to}) {
			t.Errorf("mail %s went to %v, want %s", id, m.To, to)
		}
	}
}

// The database stalls right after a mail went out, for longer than the attempt's deadline
// (HANDLER_TIMEOUT): the confirm's commit waits on a lock (a trigger the test adds, deferred
// to the commit, takes an advisory lock the test holds), the attempt's context ends, and the consumer tries the message
// again. The later attempts find the row still "sending", but this process sent it: they
// confirm without sending, so the server gets the mail once. (Before: every attempt past
// the deadline sent it again; the postgres-stalled chaos scenario saw 16 mails twice.)
func TestConfirmStalledPastTheDeadlineSendsTheMailOnce(t *testing.T) {
	url := testkit.SharedPostgres(t).Database(t)
	sink, addr := startSMTPSink(t, "127.0.0.1:0")
	h := startService(t, "email", events.Topology(events.DefaultSMSRegions),
		map[string]string{"SMTP_ADDR": addr, "DATABASE_URL": url, "HANDLER_TIMEOUT": "1s"})
	db, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	exec(t, db, `CREATE FUNCTION confirm_waits() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.status = 'sent' THEN PERFORM pg_advisory_xact_lock(4242); END IF;
			RETURN NEW;
		END $$`)
	exec(t, db, `CREATE CONSTRAINT TRIGGER confirm_waits AFTER UPDATE ON sent_emails
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION confirm_waits()`)
	holder, err := db.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release()
	if _, err := holder.Exec(context.Background(), `SELECT pg_advisory_lock(4242)`); err != nil {
		t.Fatal(err)
	}

	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-stalled", confirmed("o-1", ada))
	testkit.Eventually(t, 10*time.Second, func() string {
		if n := len(sink.received()); n == 0 {
			return "the mail was not sent"
		}
		return ""
	})
	time.Sleep(4 * time.Second) // several attempts' deadlines
	if s, _ := status(t, db, "m-stalled"); s != "sending" {
		t.Fatalf("while the confirm waits the mail is %q, want sending: the stall did not hold it", s)
	}
	if _, err := holder.Exec(context.Background(), `SELECT pg_advisory_unlock(4242)`); err != nil {
		t.Fatal(err)
	}
	h.waitSent("o-1", 1)
	if n := len(sink.received()); n != 1 {
		t.Errorf("the mail server received the mail %d times, want once", n)
	}
	if n := testkit.Depth(t, h.Ch, messaging.DeadLetterQueueName(events.QueueEmail)); n != 0 {
		t.Errorf("%d messages dead-lettered, want none", n)
	}
}

// A mail server that goes away in the middle of a session, at RCPT TO, has said nothing
// about the recipient: the mail waits and is sent once the server answers again, and
// nothing is dead-lettered. (go-mail reports that broken connection as a RCPT TO failure
// with no reply code; the chaos scenario smtp-down-long saw such a mail dead-lettered as
// "recipient rejected".)
func TestServerGoneAtRcptToIsNotARejectedRecipient(t *testing.T) {
	sink, addr := startSMTPSink(t, "127.0.0.1:0")
	sink.hangUpAtRcpt(2)
	h := startService(t, "email", events.Topology(events.DefaultSMSRegions), map[string]string{"SMTP_ADDR": addr})
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-hung-up", confirmed("o-hung-up", ada))

	testkit.Eventually(t, 30*time.Second, func() string {
		if n := len(sink.received()); n != 1 {
			return fmt.Sprintf("the mail server received %d mails, want 1", n)
		}
		return ""
	})
	if n := testkit.Depth(t, h.Ch, messaging.DeadLetterQueueName(events.QueueEmail)); n != 0 {
		t.Errorf("%d messages dead-lettered, want none", n)
	}
}

// A mail the server refuses for good is dead-lettered, and neither the dead letter's reason
// nor any log line names the customer's address or phone number (the server's reply and
// go-mail's error both hold the address): the order id says which order it was.
func TestRejectedRecipientLeavesNoAddressInLogsOrDeadLetters(t *testing.T) {
	unknown := events.Customer{Name: "Cy", Email: "cy.nobody@example.com", Phone: "+44 20 7946 0958"}
	sink, addr := startSMTPSink(t, "127.0.0.1:0")
	sink.rejectRecipient(unknown.Email)
	h := startService(t, "email", events.Topology(events.DefaultSMSRegions), map[string]string{"SMTP_ADDR": addr})
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-rejected", confirmed("o-rejected", unknown))

	dead := testkit.Get(t, h.Ch, messaging.DeadLetterQueueName(events.QueueEmail), 30*time.Second)
	reason, _ := dead.Headers[messaging.HeaderDeadLetterReason].(string)
	if dead.MessageId != "m-rejected" || !strings.Contains(reason, "o-rejected") || !strings.Contains(reason, "550") {
		t.Errorf("dead letter %q with reason %q; want m-rejected naming the order and the server's 550", dead.MessageId, reason)
	}
	testkit.Eventually(t, 10*time.Second, func() string {
		if !strings.Contains(h.Logs(), "message dead-lettered") {
			return "no log line says the message was dead-lettered"
		}
		return ""
	})
	digits := strings.NewReplacer(" ", "", "+", "").Replace(unknown.Phone)
	for what, text := range map[string]string{"dead-letter reason": reason, "logs": h.Logs()} {
		for _, secret := range []string{unknown.Email, "cy.nobody", unknown.Phone, digits} {
			if strings.Contains(text, secret) {
				t.Errorf("%s hold %q:\n%s", what, secret, text)
			}
		}
	}
}

// GET /emails is for staff: no token is a 401, a customer's token a 403.
func TestEmailsAreForStaff(t *testing.T) {
	h, _ := startEmail(t)
	customer := h.Hydra.Token(t, "alice", auth.RoleCustomer)
	for _, c := range []struct {
		who, token string
		want       int
	}{{"nobody", "", http.StatusUnauthorized}, {"a customer", customer, http.StatusForbidden}, {"staff", h.Token, http.StatusOK}} {
		if got := h.StatusAs(http.MethodGet, "/emails", c.token); got != c.want {
			t.Errorf("GET /emails as %s = %d, want %d", c.who, got, c.want)
		}
	}
}

// The mails of many events share a few SMTP sessions (SMTP_SESSIONS), kept open between
// mails, instead of one connection per mail; each arrives once.
func TestMailsShareSMTPSessions(t *testing.T) {
	const orders, sessions = 12, 2
	sink, addr := startSMTPSink(t, "127.0.0.1:0")
	h := startService(t, "email", events.Topology(events.DefaultSMSRegions),
		map[string]string{"SMTP_ADDR": addr, "SMTP_SESSIONS": strconv.Itoa(sessions)})
	for i := range orders {
		id := fmt.Sprintf("o-%d", i)
		h.PublishFanout(events.TypeOrderPlaced, "m-placed-"+id, placed(id, ada))
		h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-confirmed-"+id, confirmed(id, ada))
	}
	for i := range orders {
		h.waitSent(fmt.Sprintf("o-%d", i), 2)
	}
	if n := len(sink.received()); n != 2*orders {
		t.Errorf("the mail server received %d mails, want %d", n, 2*orders)
	}
	if n := sink.sessions.Load(); n > sessions {
		t.Errorf("%d mails took %d SMTP connections, want at most %d", 2*orders, n, sessions)
	}
}
