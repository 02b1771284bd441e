// Package tlsflow runs Warren as deploy/compose.tls.yml does (e2e.WithTLS): every service
// talks AMQPS to RabbitMQ, PostgreSQL with sslmode=verify-full and STARTTLS to the mail
// server, with certificates of a CA made for the run. It is a package of its own because
// it needs a system of its own: the e2e package's TestMain starts the plain one, and
// whole systems take turns on the host (e2e.LockHost).
//
//	cd e2e && go test -count=1 ./tlsflow    # after `make images`; -short skips it
package tlsflow

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/e2e"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/testkit"
)

// The happy flow under TLS: an order is placed, confirmed, mailed (received, confirmed)
// and texted; and what carried it was TLS: every service's broker connection is AMQPS,
// every database session of theirs is encrypted, and a session in clear is refused.
// (Mailpit requires STARTTLS here, so a mail that arrived came over TLS.)
func TestFlowUnderTLS(t *testing.T) {
	testkit.Integration(t)
	unlock, err := e2e.LockHost()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx := context.WithoutCancel(t.Context())
	if n, err := e2e.ReapLeftovers(ctx); err != nil || n > 0 {
		t.Logf("removed %d leftovers of killed runs (errors: %v)", n, err)
	}
	t0 := time.Now()
	s, err := e2e.Start(t.Context(), e2e.ImagesFromEnv(), t.Logf, e2e.WithTLS())
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Logf("system with TLS up in %s", time.Since(t0).Round(100*time.Millisecond))
	defer func() {
		if t.Failed() {
			s.DumpLogs(ctx, &logWriter{t}, 30)
		}
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	if !strings.HasPrefix(s.AMQPURL, "amqps://") {
		t.Errorf("AMQPURL %s: want amqps://", s.AMQPURL)
	}

	customer := events.Customer{Name: "Ada TLS", Email: fmt.Sprintf("ada.tls.%d@example.com", time.Now().UnixNano()), Phone: "+44 20 7946 0958"}
	id := s.Order.Place(t, e2e.OrderRequest{Customer: customer, Region: events.RegionEurope,
		Items: []e2e.Line{{SKU: "carrot-seeds", Quantity: 2}}}, nil)
	if o := s.Order.Settled(t, id); o.Status != e2e.StatusConfirmed {
		t.Fatalf("order %s is %s (%s), want confirmed", id, o.Status, o.Reason)
	}
	mails := s.Mailpit.WaitFor(t, customer.Email, e2e.MailReceived, e2e.MailConfirmed)
	if got := e2e.CountKinds(mails); got[e2e.MailReceived] != 1 || got[e2e.MailConfirmed] != 1 || len(mails) != 2 {
		t.Errorf("mails %v, want one received and one confirmed", got)
	}
	var texts []e2e.Text
	e2e.Eventually(t, 30*time.Second, "a text for order "+id, func() error {
		if texts = s.SMS.Texts(t, id); len(texts) == 0 {
			return fmt.Errorf("no text yet")
		}
		return nil
	})
	if len(texts) != 1 {
		t.Errorf("order %s: %d texts, want 1", id, len(texts))
	}

	checkBrokerConnectionsAreTLS(t, s)
	checkDatabaseSessionsAreTLS(t, s)
}

// checkBrokerConnectionsAreTLS checks, with the management API, that the broker has
// connections from every service, and that each uses TLS.
func checkBrokerConnectionsAreTLS(t *testing.T, s *e2e.System) {
	t.Helper()
	var conns []struct {
		Name string `json:"name"` // client ip:port -> broker ip:port
		SSL  bool   `json:"ssl"`
		Port int    `json:"port"`
	}
	// The management API lists a connection some seconds after it opened.
	e2e.Eventually(t, 30*time.Second, "the services' broker connections listed", func() error {
		if err := e2e.Call(t.Context(), http.MethodGet, s.ManagementURL+"/api/connections", nil, nil, http.StatusOK, &conns); err != nil {
			return err
		}
		if len(conns) < 2*6 { // two per instance: inventory, order, email-1, email-2, sms, analytics
			return fmt.Errorf("%d connections", len(conns))
		}
		return nil
	})
	for _, c := range conns {
		if !c.SSL || c.Port != 5671 {
			t.Errorf("broker connection %s (ssl %v) is not AMQPS", c.Name, c.SSL)
		}
	}
}

// checkDatabaseSessionsAreTLS checks in pg_stat_ssl that every service's sessions are
// encrypted, and that a session in clear over the network is refused.
func checkDatabaseSessionsAreTLS(t *testing.T, s *e2e.System) {
	t.Helper()
	// Over the container's Unix socket, which pg_hba.tls.conf trusts (no network).
	out, err := s.Exec(t.Context(), "postgres", "psql", "-U", "warren", "-d", "postgres", "-Atc",
		"SELECT count(*) FILTER (WHERE NOT s.ssl), count(*), count(DISTINCT a.usename) "+
			"FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = ANY(ARRAY['"+strings.Join(e2e.Services, "','")+"'])")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(strings.TrimSpace(out), "|")
	if len(f) != 3 {
		t.Fatalf("pg_stat_ssl: %q", out)
	}
	plain, _ := strconv.Atoi(f[0])
	total, _ := strconv.Atoi(f[1])
	users, _ := strconv.Atoi(f[2])
	if plain != 0 || users != len(e2e.Services) {
		t.Errorf("database sessions: %d of %d in clear, from %d of the %d services; want none in clear, from every service", plain, total, users, len(e2e.Services))
	}
	// A client in clear over TCP (the order service's own role and password) is refused.
	out, err = s.Exec(t.Context(), "postgres", "psql", "postgres://order:order@127.0.0.1:5432/order?sslmode=disable", "-Atc", "SELECT 1")
	if err == nil || !strings.Contains(out, "no encryption") {
		t.Errorf("a session in clear: %v %q; want it refused by pg_hba.conf", err, out)
	}
}

type logWriter struct{ t *testing.T }

func (w *logWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
