package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/warrenhq/warren/deploy/internal/deadletters"
)

// inspected is one message of dlq inspect --json.
type inspected struct {
	deadletters.Message
	// Replay is where dlq replay would send it for each --to mode, or why it would not.
	Replay        map[deadletters.Mode]string `json:"replay"`
	Body          string                      `json:"body"`
	BodyBytes     int                         `json:"body_bytes"`
	BodyTruncated bool                        `json:"body_truncated"`
}

// dlqInspect prints the messages at the head of a dead-letter queue and leaves them there.
func dlqInspect(ctx context.Context, inv *invocation) error {
	queue, opts := inv.args[0], inv.config.DLQ
	if err := deadletters.CheckQueue(topology, queue); err != nil {
		return err
	}
	if opts.Limit < 1 || opts.BodyBytes < 0 {
		return fmt.Errorf("--limit must be positive and --body not negative")
	}
	c, err := dlqClient(inv.config.Broker)
	if err != nil {
		return err
	}
	defer c.Close()
	total, err := c.Count(queue)
	if err != nil {
		return err
	}
	deliveries, err := c.Peek(ctx, queue, opts.Limit)
	if err != nil {
		return err
	}
	origins, err := deadletters.NewOrigins(topology)
	if err != nil {
		return err
	}
	out := make([]inspected, len(deliveries))
	for i, d := range deliveries {
		m := deadletters.Describe(d)
		body, truncated := printable(m.Body, opts.BodyBytes)
		out[i] = inspected{Message: m, Body: body, BodyBytes: len(m.Body), BodyTruncated: truncated, Replay: map[deadletters.Mode]string{}}
		for _, mode := range []deadletters.Mode{deadletters.ToQueue, deadletters.ToOriginal} {
			if to, err := origins.Verify(queue, d, mode); err == nil {
				out[i].Replay[mode] = to.String()
			} else {
				out[i].Replay[mode] = err.Error()
			}
		}
	}
	if opts.JSON {
		return printJSON(inv.stdout, struct {
			Queue    string      `json:"queue"`
			Count    int         `json:"count"`
			Messages []inspected `json:"messages"`
		}{queue, total, out})
	}
	if len(out) == 0 {
		fmt.Fprintf(inv.stdout, "%s is empty\n", queue)
		return nil
	}
	fmt.Fprintf(inv.stdout, "%s: %d message(s); the first %d, left in place:\n", queue, total, len(out))
	for i, m := range out {
		printMessage(inv.stdout, i+1, m)
	}
	return nil
}

func printMessage(w io.Writer, n int, m inspected) {
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "   %-15s %s\n", label, fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(w, "\n%d. %-15s %s\n", n, "message id", orNone(m.MessageID))
	line("type", "%s", orNone(m.Type))
	line("correlation id", "%s", orNone(m.CorrelationID))
	line("reason", "%s", m.Reason)
	by := "by the " + string(m.DeadLetteredBy)
	switch m.DeadLetteredBy {
	case deadletters.ByNobody:
		by = "never delivered"
	case deadletters.ByUnknown:
		by = "by whoever published it to the queue's .dlx"
	}
	if m.Queue != "" {
		by += ", from " + m.Queue
	}
	if !m.DeadLetteredAt.IsZero() {
		by += ", at " + m.DeadLetteredAt.UTC().Format(time.RFC3339)
	}
	if m.Attempts > 0 {
		by += fmt.Sprintf(", after %d attempt(s)", m.Attempts)
	}
	line("dead-lettered", "%s", by)
	for _, d := range m.Deaths {
		line("x-death", "%s in %s, count %d, published to %s",
			d.Reason, d.Queue, d.Count, deadletters.Destination{Exchange: d.Exchange, RoutingKey: strings.Join(d.RoutingKeys, ",")})
	}
	if m.Original != nil {
		line("original", "%s", m.Original)
	} else {
		line("original", "unknown")
	}
	line("trace id", "%s", orNone(m.TraceID))
	if m.ReplayCount > 0 {
		line("replayed", "%d time(s) before", m.ReplayCount)
	}
	for _, mode := range []deadletters.Mode{deadletters.ToQueue, deadletters.ToOriginal} {
		line("--to "+string(mode), "%s", m.Replay[mode])
	}
	size := fmt.Sprintf("(%d bytes)", m.BodyBytes)
	if m.BodyTruncated {
		size = fmt.Sprintf("(%d bytes, truncated)", m.BodyBytes)
	}
	line("body", "%s %s", m.Body, size)
}

// printable is at most n bytes of body as text (cut at a character boundary): invalid
// UTF-8 becomes U+FFFD and control characters spaces, so one message stays one block.
func printable(body []byte, n int) (string, bool) {
	truncated := len(body) > n
	if truncated {
		cut := n
		for cut > 0 && !utf8.RuneStart(body[cut]) { // do not split a character
			cut--
		}
		body = body[:cut]
	}
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(string(body), "\uFFFD"))
	return s, truncated
}
