package mailing

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	netmail "net/mail"
	"strings"
	"testing"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

func TestComposeHeaders(t *testing.T) {
	s, err := NewSender(SMTPConfig{Addr: "localhost:1025", From: "Warren Shop <orders@warren.example>"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.compose("5f0c1e4e-7d51-4f0e-9a55-0d7c4c1d2f10",
		Mail{Kind: KindConfirmed, OrderID: "o-1", To: "ada@example.com", Name: "Ada Lovelace", Subject: "Your order o-1 is confirmed", Body: "Hello Ada,\n"})
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	if _, err := msg.WriteTo(&raw); err != nil {
		t.Fatal(err)
	}
	parsed, err := netmail.ReadMessage(&raw)
	if err != nil {
		t.Fatalf("not a valid RFC 5322 message: %v", err)
	}
	for header, want := range map[string]string{
		"Message-Id": "<5f0c1e4e-7d51-4f0e-9a55-0d7c4c1d2f10@warren.example>",
		"Subject":    "Your order o-1 is confirmed",
		"To":         `"Ada Lovelace" <ada@example.com>`,
		"From":       `"Warren Shop" <orders@warren.example>`,
	} {
		if got := parsed.Header.Get(header); got != want {
			t.Errorf("%s = %q, want %q", header, got, want)
		}
	}
	if parsed.Header.Get("Date") == "" || parsed.Header.Get("User-Agent") != "" {
		t.Errorf("want a Date and no User-Agent; headers: %v", parsed.Header)
	}
	body, _ := io.ReadAll(parsed.Body)
	if !bytes.Contains(body, []byte("Hello Ada,")) {
		t.Errorf("body = %q", body)
	}
}

func TestComposeRejectsBadAddress(t *testing.T) {
	s, err := NewSender(SMTPConfig{Addr: "localhost:1025", From: "orders@warren.example"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.compose("id", Mail{To: "not an address"})
	if !errors.Is(err, ErrRecipientRejected) || !messaging.IsPermanent(err) {
		t.Errorf("err = %v; want a permanent ErrRecipientRejected", err)
	}
}

func TestSMTPConfigValidate(t *testing.T) {
	for _, c := range []SMTPConfig{
		{Addr: "localhost", From: "a@b.example"},
		{Addr: "localhost:0", From: "a@b.example"},
		{Addr: ":25", From: "a@b.example"},
		{Addr: "localhost:25", From: "Warren Shop"},
		{Addr: "localhost:25", From: "a@b.example", TLS: "always"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", c)
		}
	}
	if err := (SMTPConfig{Addr: "mail.example:587", From: "Warren <a@b.example>"}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

// composedTo composes a mail to name <email> as Send does and returns the To header the
// message carries, parsed back with net/mail.
func composedTo(t *testing.T, s *Sender, name, email string) (*netmail.Address, error) {
	t.Helper()
	msg, err := s.compose("id-1", Mail{Kind: KindConfirmed, OrderID: "o-1", To: email, Name: name, Subject: "s", Body: "b\n"})
	if err != nil {
		return nil, err
	}
	var raw bytes.Buffer
	if _, err := msg.WriteTo(&raw); err != nil {
		t.Fatalf("write %q <%s>: %v", name, email, err)
	}
	parsed, err := netmail.ReadMessage(&raw)
	if err != nil {
		t.Fatalf("mail to %q <%s> is not a valid RFC 5322 message: %v\n%s", name, email, err, raw.String())
	}
	if n := len(parsed.Header["To"]); n != 1 {
		t.Fatalf("mail to %q <%s> has %d To headers", name, email, n)
	}
	to, err := netmail.ParseAddress(parsed.Header.Get("To"))
	if err != nil {
		t.Fatalf("To header %q of %q <%s> does not parse: %v", parsed.Header.Get("To"), name, email, err)
	}
	return to, nil
}

// TestComposeQuotesNames: go-mail's AddToFormat, which compose used, pasted the name
// between quotes as it was, so these names made a To header that does not parse (issue 10).
func TestComposeQuotesNames(t *testing.T) {
	s, err := NewSender(SMTPConfig{Addr: "localhost:1025", From: "orders@warren.example"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{`Dwayne "The Rock`, `Back\slash\`, `\`, `"`, `Zoë (née Smith), "Z"`, "李小龍",
		"=?utf-8?q?Mallory?=", strings.Repeat("Long Name ", 9) + "End", strings.Repeat("é", 100)} {
		to, err := composedTo(t, s, name, "ada@example.com")
		if err != nil || to.Name != name || to.Address != "ada@example.com" {
			t.Errorf("mail to %q is addressed to %v, %v", name, to, err)
		}
	}
}

// FuzzCompose: every name and address the contract accepts (events.Customer.MailAddress,
// the rule POST /orders checks) composes, through go-mail, into a message whose To header
// reads back as that address under that name; everything else is refused as malformed.
func FuzzCompose(f *testing.F) {
	for _, name := range []string{"Ada Lovelace", `Dwayne "The Rock`, `Back\slash\`, "Eve\r\nBcc: x@example.com", "Zoë  Å", ""} {
		f.Add(name, "ada@example.com")
	}
	f.Add("Bo", "not an address")
	s, err := NewSender(SMTPConfig{Addr: "localhost:1025", From: "orders@warren.example"}, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, email string) {
		want, ruleErr := events.Customer{Name: name, Email: email}.MailAddress()
		to, err := composedTo(t, s, name, email)
		switch {
		case ruleErr != nil:
			if !errors.Is(err, events.ErrMalformed) || !messaging.IsPermanent(err) {
				t.Fatalf("%q <%s> breaks the rule (%v) but compose says %v", name, email, ruleErr, err)
			}
		case err != nil:
			t.Fatalf("%q <%s> is accepted by the rule but does not compose: %v", name, email, err)
		case to.Name != want.Name || to.Address != email:
			t.Fatalf("%q <%s> is mailed to %q <%s>, want %q", name, email, to.Name, to.Address, want.Name)
		}
	})
}
