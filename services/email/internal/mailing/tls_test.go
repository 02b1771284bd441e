package mailing

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"slices"
	"testing"

	"github.com/warrenhq/warren/shared/certs"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

// trusting is a TLS client configuration that trusts ca only.
func trusting(ca *certs.Authority) *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

func newTestAuthority(t *testing.T) *certs.Authority {
	t.Helper()
	ca, err := certs.NewAuthority("warren test CA", certs.ServerValidity)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// sendTo sends one mail to rcpt through a Sender for config and returns Send's error.
func sendTo(t *testing.T, config SMTPConfig, rcpt string) error {
	t.Helper()
	config.From = "Warren Shop <orders@warren.example>"
	s, err := NewSender(config, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return s.Send(context.Background(), "id-"+rcpt, Mail{Kind: KindConfirmed, OrderID: "o-1", To: rcpt, Name: "Ada", Subject: "to " + rcpt, Body: "b\n"})
}

// wantNotSecure checks that err is the refusal of a session TLS could not secure: the mail
// waits for the server (Unavailable), it is not dead-lettered as the mail's own fault.
func wantNotSecure(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrNotSecure) || !errors.Is(err, messaging.ErrUnavailable) {
		t.Errorf("%s: err = %v; want ErrNotSecure, as the server being unavailable", what, err)
	}
}

// SMTP_TLS=required against a Mailpit that requires STARTTLS with a certificate of the
// test's CA: with that CA the mail is delivered; trusting another CA, or dialling a name
// the certificate does not carry, nothing is sent. Opportunistic TLS does not fall back to
// clear text when the certificate does not verify either.
func TestRequiredTLSDeliversOnlyToATrustedServer(t *testing.T) {
	ca := newTestAuthority(t)
	certPEM, keyPEM, err := ca.Issue([]string{"localhost"}, certs.ServerValidity)
	if err != nil {
		t.Fatal(err)
	}
	mp := testkit.OwnMailpit(t, testkit.MailpitOptions{CertPEM: certPEM, KeyPEM: keyPEM, RequireSTARTTLS: true})
	_, port, _ := net.SplitHostPort(mp.SMTPAddr)
	addr := net.JoinHostPort("localhost", port) // the name in the certificate

	if err := sendTo(t, SMTPConfig{Addr: addr, TLS: TLSRequired, TLSConfig: trusting(ca)}, "trusted@example.com"); err != nil {
		t.Fatalf("required TLS, trusted server: %v", err)
	}
	if got := mp.Subjects(t, "trusted@example.com"); !slices.Equal(got, []string{"to trusted@example.com"}) {
		t.Errorf("mailpit caught %v, want the one mail", got)
	}

	wantNotSecure(t, "required TLS, another CA",
		sendTo(t, SMTPConfig{Addr: addr, TLS: TLSRequired, TLSConfig: trusting(newTestAuthority(t))}, "untrusted@example.com"))
	wantNotSecure(t, "required TLS, a name not in the certificate",
		sendTo(t, SMTPConfig{Addr: net.JoinHostPort("127.0.0.1", port), TLS: TLSRequired, TLSConfig: trusting(ca)}, "misnamed@example.com"))
	wantNotSecure(t, "opportunistic TLS, another CA",
		sendTo(t, SMTPConfig{Addr: addr, TLS: TLSOpportunistic, TLSConfig: trusting(newTestAuthority(t))}, "opportunist@example.com"))
	for _, rcpt := range []string{"untrusted@example.com", "misnamed@example.com", "opportunist@example.com"} {
		if got := mp.Subjects(t, rcpt); len(got) > 0 {
			t.Errorf("mailpit caught %v for %s over a session that did not verify", got, rcpt)
		}
	}
}

// Against a server that offers no STARTTLS, SMTP_TLS=required sends nothing, and the
// default (opportunistic) still delivers in clear, as to a local Mailpit.
func TestRequiredTLSRefusesAServerWithoutSTARTTLS(t *testing.T) {
	mp := testkit.OwnMailpit(t, testkit.MailpitOptions{})
	wantNotSecure(t, "required TLS, no STARTTLS", sendTo(t, SMTPConfig{Addr: mp.SMTPAddr, TLS: TLSRequired}, "required@example.com"))
	if got := mp.Subjects(t, "required@example.com"); len(got) > 0 {
		t.Errorf("mailpit caught %v in clear with TLS required", got)
	}
	if err := sendTo(t, SMTPConfig{Addr: mp.SMTPAddr}, "plain@example.com"); err != nil {
		t.Fatalf("opportunistic, no STARTTLS: %v", err)
	}
	if got := mp.Subjects(t, "plain@example.com"); len(got) != 1 {
		t.Errorf("mailpit caught %v, want the one mail", got)
	}
}
