package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Mailpit is the mail catcher's HTTP API: every mail the email service sends ends up there.
type Mailpit struct{ client }

// NewMailpit returns the API of the Mailpit at base, e.g. http://localhost:8025.
func NewMailpit(base string) *Mailpit { return &Mailpit{client{base: base}} }

// Mail is a caught mail, as Mailpit's message summaries show it.
type Mail struct {
	ID        string    `json:"ID"`
	MessageID string    `json:"MessageID"`
	From      Address   `json:"From"`
	To        []Address `json:"To"`
	Subject   string    `json:"Subject"`
}

// Address is a mail address with its display name.
type Address struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// Mail kinds, as the email service's subjects name them (see MailKind).
const (
	MailReceived  = "received"
	MailConfirmed = "confirmed"
	MailRejected  = "rejected"
	MailCancelled = "cancelled"
)

// MailKind tells which event a mail answers from its subject (services/email renders them:
// "We received your order …", "… is confirmed", "… could not be fulfilled", "… was
// cancelled"); "" when it cannot tell.
func MailKind(subject string) string {
	s := strings.ToLower(subject)
	switch {
	case strings.Contains(s, "receiv"):
		return MailReceived
	case strings.Contains(s, "confirm"):
		return MailConfirmed
	case strings.Contains(s, "fulfil"), strings.Contains(s, "reject"):
		return MailRejected
	case strings.Contains(s, "cancel"):
		return MailCancelled
	}
	return ""
}

// Search returns every mail matching a Mailpit search query (e.g. `to:"a@example.com"`).
func (m *Mailpit) Search(ctx context.Context, query string) ([]Mail, error) {
	const page = 200
	var all []Mail
	for start := 0; ; start += page {
		var out struct {
			MessagesCount int    `json:"messages_count"`
			Messages      []Mail `json:"messages"`
		}
		path := fmt.Sprintf("/api/v1/search?query=%s&start=%d&limit=%d", url.QueryEscape(query), start, page)
		if err := m.get(ctx, path, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Messages...)
		if len(out.Messages) < page || len(all) >= out.MessagesCount {
			return all, nil
		}
	}
}

// To returns the mails addressed to addr.
func (m *Mailpit) To(ctx context.Context, addr string) ([]Mail, error) {
	found, err := m.Search(ctx, `to:"`+addr+`"`)
	if err != nil {
		return nil, err
	}
	// The search matches substrings; keep the exact recipient only.
	var out []Mail
	for _, mail := range found {
		for _, to := range mail.To {
			if strings.EqualFold(to.Address, addr) {
				out = append(out, mail)
				break
			}
		}
	}
	return out, nil
}

// WaitFor waits until addr has received mails of every kind in kinds (as many of each as
// listed) and returns all of addr's mails. Whether there are more than that is for the
// caller to judge.
func (m *Mailpit) WaitFor(t testing.TB, addr string, kinds ...string) []Mail {
	t.Helper()
	var mails []Mail
	Eventually(t, 30*time.Second, fmt.Sprintf("mails %v to %s", kinds, addr), func() (err error) {
		if mails, err = m.To(t.Context(), addr); err != nil {
			return err
		}
		have := CountKinds(mails)
		for kind, n := range count(kinds) {
			if have[kind] < n {
				return fmt.Errorf("have %v", have)
			}
		}
		return nil
	})
	return mails
}

// CountKinds counts mails by MailKind.
func CountKinds(mails []Mail) map[string]int {
	out := map[string]int{}
	for _, m := range mails {
		out[MailKind(m.Subject)]++
	}
	return out
}

func count(kinds []string) map[string]int {
	out := map[string]int{}
	for _, k := range kinds {
		out[k]++
	}
	return out
}

// Resent is how many mails Mailpit discarded because it already held one with the same
// Message-ID: each is a second SMTP delivery of a mail, which the recipient does not see.
// The email service gives a mail the same Message-ID on every attempt, so a crash between
// the SMTP server accepting a mail and the service recording it costs a resend and never
// a second mail in the mailbox (started with MP_IGNORE_DUPLICATE_IDS, as real mailboxes
// such as Gmail deduplicate by Message-ID).
func (m *Mailpit) Resent(ctx context.Context) (int, error) {
	var info struct {
		RuntimeStats struct {
			SMTPIgnored *int `json:"SMTPIgnored"`
		} `json:"RuntimeStats"`
	}
	if err := m.get(ctx, "/api/v1/info", &info); err != nil {
		return 0, err
	}
	if info.RuntimeStats.SMTPIgnored == nil {
		return 0, fmt.Errorf("mailpit /api/v1/info has no RuntimeStats.SMTPIgnored: is it older than the tested v1.33?")
	}
	return *info.RuntimeStats.SMTPIgnored, nil
}
