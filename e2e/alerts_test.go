package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

// oncall is where deploy/alertmanager/alertmanager.yml mails every alert.
const oncall = "oncall@warren.example"

// The alert rules of deploy/prometheus/rules/ fire on the running system, as compose runs
// Prometheus and Alertmanager: with the email service stopped while orders flow, its queue's
// no-consumer alert goes pending, then firing, and on-call gets a mail; with the service back
// the alert resolves and on-call hears so; a poison message raises the dead-letter alert.
func TestAlerts(t *testing.T) {
	s := system(t)
	prom, err := s.StartMonitoring(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	noConsumers := map[string]string{"queue": events.QueueEmail}

	// Prometheus has scraped the queue with its consumers, and nothing is wrong with it yet.
	Eventually(t, time.Minute, "Prometheus scraping "+events.QueueEmail+"'s consumers", func() error {
		series, err := prom.Query(t.Context(), fmt.Sprintf(`rabbitmq_detailed_queue_consumers{queue=%q} > 0`, events.QueueEmail))
		if err != nil || len(series) == 0 {
			return fmt.Errorf("no consumers seen yet (%v)", err)
		}
		return nil
	})
	if a, err := prom.Alert(t.Context(), "WarrenQueueHasNoConsumers", noConsumers); err != nil || a != nil {
		t.Fatalf("before the email service stops: %+v, %v", a, err)
	}

	// Stop every email container, and place orders (rejected ones, which take no stock from
	// the other tests) until it is back: their events wait in the email queue.
	for _, e := range s.Email {
		if err := s.StopContainer(t.Context(), e.Name, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	restarted := false
	restart := func() {
		if restarted {
			return
		}
		restarted = true
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 2*time.Minute)
		defer cancel()
		if err := restartEmail(ctx, s); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(restart) // the rest of the suite needs the email service, whatever happens here
	stopped := time.Now()
	stopOrders := placeOrders(t, s, 2*time.Second)

	pending := awaitAlert(t, prom, "WarrenQueueHasNoConsumers", noConsumers, AlertPending, 90*time.Second)
	t.Logf("no consumers: pending %s after the stop (%s)", time.Since(stopped).Round(time.Second), pending.Annotations["summary"])
	firing := awaitAlert(t, prom, "WarrenQueueHasNoConsumers", noConsumers, AlertFiring, 2*time.Minute)
	t.Logf("no consumers: firing %s after the stop: %s", time.Since(stopped).Round(time.Second), firing.Annotations["description"])
	if !firing.ActiveAt.Equal(pending.ActiveAt) {
		t.Errorf("the firing alert became active at %s, the pending one at %s: not the same alert", firing.ActiveAt, pending.ActiveAt)
	}
	mail := awaitAlertMail(t, s, "FIRING", "WarrenQueueHasNoConsumers", events.QueueEmail)
	t.Logf("on-call mail %s after the stop: %q", time.Since(stopped).Round(time.Second), mail.Subject)

	stopOrders()
	restart()
	back := time.Now()
	Eventually(t, 2*time.Minute, "WarrenQueueHasNoConsumers resolved", func() error {
		a, err := prom.Alert(t.Context(), "WarrenQueueHasNoConsumers", noConsumers)
		switch {
		case err != nil:
			return err
		case a != nil:
			return fmt.Errorf("still %s", a.State)
		}
		return nil
	})
	t.Logf("no consumers: resolved %s after the restart", time.Since(back).Round(time.Second))
	mail = awaitAlertMail(t, s, "RESOLVED", "WarrenQueueHasNoConsumers", events.QueueEmail)
	t.Logf("on-call mail %s after the restart: %q", time.Since(back).Round(time.Second), mail.Subject)

	// A poison message, dead-lettered by the email service, raises the dead-letter alert.
	dlq := messaging.DeadLetterQueueName(events.QueueEmail)
	ch := amqpChannel(t, s)
	poisonID := "alert-poison-" + s.runID
	publish(t, ch, "", events.QueueEmail, amqp.Publishing{
		MessageId: poisonID, Type: events.TypeOrderPlaced, ContentType: "application/json",
		DeliveryMode: amqp.Persistent, Body: []byte(`{"order_id": "poison", "items": [`),
	})
	poisoned := time.Now()
	dead := awaitAlert(t, prom, "WarrenDeadLetters", map[string]string{"queue": dlq}, AlertFiring, 90*time.Second)
	t.Logf("dead letters: firing %s after the poison message: %s", time.Since(poisoned).Round(time.Second), dead.Annotations["summary"])
	awaitAlertMail(t, s, "FIRING", "WarrenDeadLetters", dlq)

	// The operator takes it out (the other tests expect only their own dead letters), and
	// the alert resolves.
	drainDeadLetter(t, ch, dlq, poisonID)
	Eventually(t, time.Minute, "WarrenDeadLetters resolved", func() error {
		a, err := prom.Alert(t.Context(), "WarrenDeadLetters", map[string]string{"queue": dlq})
		switch {
		case err != nil:
			return err
		case a != nil:
			return fmt.Errorf("still %s", a.State)
		}
		return nil
	})
}

// awaitAlert waits until Prometheus lists the alert name with labels match in state and
// returns it.
func awaitAlert(t *testing.T, prom *Prometheus, name string, match map[string]string, state string, timeout time.Duration) *Alert {
	t.Helper()
	var found *Alert
	Eventually(t, timeout, fmt.Sprintf("%s%v %s", name, match, state), func() error {
		a, err := prom.Alert(t.Context(), name, match)
		switch {
		case err != nil:
			return err
		case a == nil:
			return errors.New("not active")
		case a.State != state:
			return fmt.Errorf("%s", a.State)
		}
		found = a
		return nil
	})
	return found
}

// awaitAlertMail waits for Alertmanager's mail to on-call whose subject has status
// ("FIRING" or "RESOLVED") and every one of words: its default subject is
// "[FIRING:n] <alertname> <job> (<the other common labels>)".
func awaitAlertMail(t *testing.T, s *System, status string, words ...string) Mail {
	t.Helper()
	var found Mail
	Eventually(t, 2*time.Minute, fmt.Sprintf("a %s mail to %s about %v", status, oncall, words), func() error {
		mails, err := s.Mailpit.To(t.Context(), oncall)
		if err != nil {
			return err
		}
	next:
		for _, m := range mails {
			if !strings.HasPrefix(m.Subject, "["+status) {
				continue
			}
			for _, w := range words {
				if !strings.Contains(m.Subject, w) {
					continue next
				}
			}
			found = m
			return nil
		}
		return fmt.Errorf("%d mails to %s, none of them", len(mails), oncall)
	})
	return found
}

// placeOrders places an order every interval, each for a new customer and for a SKU out of
// stock, until the returned function is called; it returns once the last order is placed.
func placeOrders(t *testing.T, s *System, interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := 1; ; n++ {
			req := OrderRequest{Customer: customer(t, n), Region: events.RegionEurope, Items: []Line{{SKU: "rare-orchid", Quantity: 1}}}
			if _, err := s.Order.place(ctx, req, nil); err != nil && ctx.Err() == nil {
				t.Errorf("place order %d: %v", n, err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
		}
	})
	stop = func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

// restartEmail starts the stopped email containers again and waits until each is ready.
// Docker publishes their ports anew, so each EmailAPI is pointed at the new ones.
func restartEmail(ctx context.Context, s *System) error {
	for _, e := range s.Email {
		if err := s.StartContainer(ctx, e.Name); err != nil {
			return err
		}
		api, err := s.Endpoint(ctx, e.Name, "8080/tcp")
		if err != nil {
			return err
		}
		ops, err := s.Endpoint(ctx, e.Name, "9090/tcp")
		if err != nil {
			return err
		}
		e.base, e.ops = "http://"+api, "http://"+ops
	}
	for _, e := range s.Email {
		for {
			err := e.Ready(ctx)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s not ready after its restart: %w", e.Name, err)
			case <-time.After(pollInterval):
			}
		}
	}
	return nil
}

// drainDeadLetter takes the message id out of dlq, and fails t on any other dead letter.
func drainDeadLetter(t *testing.T, ch *amqp.Channel, dlq, id string) {
	t.Helper()
	Eventually(t, 30*time.Second, id+" taken out of "+dlq, func() error {
		d, ok, err := ch.Get(dlq, false)
		switch {
		case err != nil:
			t.Fatalf("basic.get %s: %v", dlq, err)
		case !ok:
			return errors.New("the queue is empty")
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
		if d.MessageId != id {
			t.Errorf("unexpected dead letter %s (%s): %v", d.MessageId, d.Type, d.Headers[messaging.HeaderDeadLetterReason])
			return errors.New("only other dead letters so far")
		}
		return nil
	})
}
