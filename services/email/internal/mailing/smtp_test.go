package mailing

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	netmail "net/mail"
	"testing"

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
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", c)
		}
	}
	if err := (SMTPConfig{Addr: "mail.example:587", From: "Warren <a@b.example>"}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
