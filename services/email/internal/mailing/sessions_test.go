package mailing

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/certs"
	"github.com/warrenhq/warren/shared/testkit"
)

// newTestSender is a Sender for config from the test's sender address.
func newTestSender(t *testing.T, config SMTPConfig) *Sender {
	t.Helper()
	config.From = "Warren Shop <orders@warren.example>"
	s, err := NewSender(config, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// mailTo is a mail to rcpt whose subject names it.
func mailTo(rcpt string) Mail {
	return Mail{Kind: KindConfirmed, OrderID: "o-" + rcpt, To: rcpt, Name: "Ada", Subject: "to " + rcpt, Body: "b\n"}
}

// wantOnce checks that Mailpit caught exactly one mail for each of rcpts.
func wantOnce(t *testing.T, mp *testkit.Mailpit, rcpts ...string) {
	t.Helper()
	for _, rcpt := range rcpts {
		if got := mp.Subjects(t, rcpt); !slices.Equal(got, []string{"to " + rcpt}) {
			t.Errorf("mailpit caught %v for %s, want the one mail", got, rcpt)
		}
	}
}

// Mails sent one after the other go over one SMTP connection, and mails sent from several
// goroutines over at most SMTPConfig.Sessions connections, never more open at once; each
// mail arrives once. (Before: one connection per mail.)
func TestMailsShareSMTPSessions(t *testing.T) {
	mp := testkit.OwnMailpit(t, testkit.MailpitOptions{})
	proxy := startProxy(t, mp.SMTPAddr)
	const sessions = 3
	s := newTestSender(t, SMTPConfig{Addr: proxy.Addr(), Sessions: sessions})
	ctx := context.Background()

	var rcpts []string
	for i := range 10 {
		rcpt := fmt.Sprintf("one-after-the-other-%d@example.com", i)
		rcpts = append(rcpts, rcpt)
		if err := s.Send(ctx, "id-"+rcpt, mailTo(rcpt)); err != nil {
			t.Fatalf("mail %d: %v", i, err)
		}
	}
	if dials, _ := proxy.counts(); dials != 1 {
		t.Errorf("10 mails one after the other took %d connections, want 1", dials)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 8 {
		wg.Go(func() {
			for i := range 4 {
				rcpt := fmt.Sprintf("concurrent-%d-%d@example.com", g, i)
				if err := s.Send(ctx, "id-"+rcpt, mailTo(rcpt)); err != nil {
					errs <- err
				}
			}
		})
		for i := range 4 {
			rcpts = append(rcpts, fmt.Sprintf("concurrent-%d-%d@example.com", g, i))
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent send: %v", err)
	}
	if dials, maxOpen := proxy.counts(); dials > sessions || maxOpen > sessions {
		t.Errorf("42 mails took %d connections, %d open at once; want at most %d", dials, maxOpen, sessions)
	}
	wantOnce(t, mp, rcpts...)

	s.Close()
	testkit.Eventually(t, 10*time.Second, func() string {
		if n := proxy.openNow(); n != 0 {
			return fmt.Sprintf("%d connections still open after Close", n)
		}
		return ""
	})
}

// A session the server closed between two mails (the proxy cuts it, as a server that
// restarts or drops idle sessions) is noticed before the next mail and replaced by a new
// one, with the same TLS policy: the mail arrives once, and the caller sees no error. The
// server requires STARTTLS, so a new session that was not secured could not deliver.
func TestSessionClosedByTheServerIsRedialled(t *testing.T) {
	ca := newTestAuthority(t)
	certPEM, keyPEM, err := ca.Issue([]string{"localhost"}, certs.ServerValidity)
	if err != nil {
		t.Fatal(err)
	}
	mp := testkit.OwnMailpit(t, testkit.MailpitOptions{CertPEM: certPEM, KeyPEM: keyPEM, RequireSTARTTLS: true})
	proxy := startProxy(t, mp.SMTPAddr)
	_, port, _ := net.SplitHostPort(proxy.Addr())
	s := newTestSender(t, SMTPConfig{Addr: net.JoinHostPort("localhost", port), TLS: TLSRequired, TLSConfig: trusting(ca)})
	ctx := context.Background()

	if err := s.Send(ctx, "id-before", mailTo("before@example.com")); err != nil {
		t.Fatalf("first mail: %v", err)
	}
	proxy.cut()
	if err := s.Send(ctx, "id-after", mailTo("after@example.com")); err != nil {
		t.Fatalf("mail after the server closed the session: %v", err)
	}
	wantOnce(t, mp, "before@example.com", "after@example.com")
	if dials, _ := proxy.counts(); dials != 2 {
		t.Errorf("%d connections, want 2 (the first, and one after the cut)", dials)
	}
}

// A session that waits longer than SMTPConfig.SessionIdle is closed; the next mail opens a
// new one.
func TestIdleSessionIsClosed(t *testing.T) {
	mp := testkit.OwnMailpit(t, testkit.MailpitOptions{})
	proxy := startProxy(t, mp.SMTPAddr)
	s := newTestSender(t, SMTPConfig{Addr: proxy.Addr(), SessionIdle: 300 * time.Millisecond})
	ctx := context.Background()

	if err := s.Send(ctx, "id-early", mailTo("early@example.com")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() string {
		if n := proxy.openNow(); n != 0 {
			return fmt.Sprintf("%d connections open after the idle time, want 0", n)
		}
		return ""
	})
	if err := s.Send(ctx, "id-late", mailTo("late@example.com")); err != nil {
		t.Fatal(err)
	}
	wantOnce(t, mp, "early@example.com", "late@example.com")
	if dials, _ := proxy.counts(); dials != 2 {
		t.Errorf("%d connections, want 2", dials)
	}
}
