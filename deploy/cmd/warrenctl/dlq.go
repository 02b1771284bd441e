package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/warrenhq/warren/deploy/internal/deadletters"
)

// errNoMessage is returned by dlq replay --id when no message of the queue has that id.
var errNoMessage = errors.New("no such message")

// errNotConfirmed is returned by dlq purge without --yes.
var errNotConfirmed = errors.New("not confirmed")

func dlqListFlags(c *Config, fs *flag.FlagSet) {
	c.Broker.bindAMQPFlags(fs)
	fs.BoolVar(&c.DLQ.JSON, "json", false, "print JSON")
}

func dlqInspectFlags(c *Config, fs *flag.FlagSet) {
	dlqListFlags(c, fs)
	fs.IntVar(&c.DLQ.Limit, "limit", 10, "how many messages to show, from the head of the queue")
	fs.IntVar(&c.DLQ.BodyBytes, "body", 512, "how many bytes of each body to show")
}

func dlqReplayFlags(c *Config, fs *flag.FlagSet) {
	dlqListFlags(c, fs)
	fs.IntVar(&c.DLQ.Limit, "limit", 0, "how many messages to replay at most (0: all)")
	fs.StringVar(&c.DLQ.MessageID, "id", "", "replay only the messages with this message id")
	fs.StringVar(&c.DLQ.To, "to", string(deadletters.ToQueue),
		`"queue": to the queue that failed them (default); "original": to the exchange and routing key they were published with`)
}

func dlqPurgeFlags(c *Config, fs *flag.FlagSet) {
	c.Broker.bindAMQPFlags(fs)
	fs.BoolVar(&c.DLQ.Yes, "yes", false, "really delete every message of the queue")
}

// dlqClient connects to the broker over AMQP as the administrator.
func dlqClient(cfg BrokerConfig) (*deadletters.Client, error) {
	u, err := cfg.amqpURL()
	if err != nil {
		return nil, err
	}
	return deadletters.Dial(deadletters.Config{URL: u, User: cfg.AdminUser, Password: cfg.AdminPassword, VHost: cfg.VHost})
}

// queueCount is one line of dlq list.
type queueCount struct {
	Queue    string `json:"queue"`
	Messages int    `json:"messages"`
	Exists   bool   `json:"exists"`
}

// dlqList prints every dead-letter queue and how many messages wait in it.
func dlqList(_ context.Context, inv *invocation) error {
	c, err := dlqClient(inv.config.Broker)
	if err != nil {
		return err
	}
	defer c.Close()
	var counts []queueCount
	for _, q := range deadletters.Queues(topology) {
		n, err := c.Count(q)
		if err != nil && !errors.Is(err, deadletters.ErrNoQueue) {
			return err
		}
		counts = append(counts, queueCount{Queue: q, Messages: n, Exists: err == nil})
	}
	if inv.config.DLQ.JSON {
		return printJSON(inv.stdout, counts)
	}
	w := tabwriter.NewWriter(inv.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "QUEUE\tMESSAGES")
	for _, c := range counts {
		if c.Exists {
			fmt.Fprintf(w, "%s\t%d\n", c.Queue, c.Messages)
		} else {
			fmt.Fprintf(w, "%s\tmissing (warrenctl broker setup declares it)\n", c.Queue)
		}
	}
	return w.Flush()
}

// dlqReplay sends dead letters back and reports each.
func dlqReplay(ctx context.Context, inv *invocation) error {
	queue, opts := inv.args[0], inv.config.DLQ
	if err := deadletters.CheckQueue(topology, queue); err != nil {
		return err
	}
	mode, err := deadletters.ParseMode(opts.To)
	if err != nil {
		return err
	}
	if opts.Limit < 0 {
		return fmt.Errorf("--limit must not be negative")
	}
	c, err := dlqClient(inv.config.Broker)
	if err != nil {
		return err
	}
	defer c.Close()
	origins, err := deadletters.NewOrigins(topology)
	if err != nil {
		return err
	}
	res, err := c.Replay(ctx, queue, deadletters.ReplayOptions{Origins: origins, To: mode, Limit: opts.Limit, MessageID: opts.MessageID})
	inv.logger.Info("dead letters replayed", "queue", queue, "to", mode, "replayed", len(res.Replayed), "left", len(res.Skipped), "error", err)
	if opts.JSON {
		if res.Replayed == nil {
			res.Replayed = []deadletters.Replayed{}
		}
		if res.Skipped == nil {
			res.Skipped = []deadletters.Skipped{}
		}
		if perr := printJSON(inv.stdout, res); perr != nil {
			return errors.Join(err, perr)
		}
	} else {
		for _, r := range res.Replayed {
			fmt.Fprintf(inv.stdout, "replayed %s to %s\n", orNone(r.MessageID), r.To)
		}
		for _, s := range res.Skipped {
			fmt.Fprintf(inv.stdout, "left %s in %s: %s\n", orNone(s.MessageID), queue, s.Reason)
		}
		fmt.Fprintf(inv.stdout, "%s: %d replayed, %d left in place\n", queue, len(res.Replayed), len(res.Skipped))
	}
	if err == nil && opts.MessageID != "" && len(res.Replayed)+len(res.Skipped) == 0 {
		err = fmt.Errorf("%w: %q is not in %s", errNoMessage, opts.MessageID, queue)
	}
	return err
}

// dlqPurge deletes every message of a dead-letter queue, once confirmed with --yes.
func dlqPurge(_ context.Context, inv *invocation) error {
	queue := inv.args[0]
	if err := deadletters.CheckQueue(topology, queue); err != nil {
		return err
	}
	c, err := dlqClient(inv.config.Broker)
	if err != nil {
		return err
	}
	defer c.Close()
	if !inv.config.DLQ.Yes {
		n, err := c.Count(queue)
		if err != nil {
			return err
		}
		if n == 0 {
			fmt.Fprintf(inv.stdout, "%s is empty\n", queue)
			return nil
		}
		return fmt.Errorf("%w: this deletes the %d message(s) of %s for good; add --yes", errNotConfirmed, n, queue)
	}
	n, err := c.Purge(queue)
	if err != nil {
		return err
	}
	fmt.Fprintf(inv.stdout, "purged %d message(s) from %s\n", n, queue)
	inv.logger.Info("dead letters purged", "queue", queue, "messages", n)
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
