package chaos

import (
	"fmt"
	"time"
)

// Report is what one scenario did and found: the one line it prints.
type Report struct {
	Scenario string
	Load     Counts
	// Final counts the accepted orders that reached a final state, by state.
	Final, Confirmed, Rejected, Cancelled int
	// Lost counts accepted orders that never left pending.
	Lost int
	// Missing counts expected effects that never happened: mails, texts, analytics events,
	// poison messages not dead-lettered.
	Missing int
	// Duplicated counts effects that happened more than once: mails and texts beyond one
	// per event, analytics events and orders counted twice, dead letters beyond one per
	// poison message.
	Duplicated int
	// Resent counts mails delivered to the SMTP server a second time, with the Message-ID
	// of the first; the mailbox keeps one of each (e2e.Mailpit.Resent), so they are not
	// duplicated effects. A resend is the email service's one unavoidable window: killed
	// after the server took a mail and before its database recorded that.
	Resent int
	// StrayServerErrors counts the 5xx answers no fault explains: answered before it, or to
	// requests sent after it.
	StrayServerErrors int
	// StockOff sums, over the SKUs, how many units the stock is away from its initial
	// level less what the confirmed orders hold.
	StockOff int
	// DeadLetters is what the dead-letter queues held; Poison what the test injected.
	DeadLetters, Poison int
	// Fault is how long the fault lasted; Recovery how long an order placed right after it
	// took to be settled.
	Fault, Recovery time.Duration
}

func (r Report) String() string {
	c := r.Load
	return fmt.Sprintf("chaos %s: sent=%d accepted=%d retried=%d (refused=%d 5xx=%d 429=%d ambiguous=%d) 5xx-outside-fault=%d gave-up=%d "+
		"final=%d (confirmed=%d rejected=%d cancelled=%d) lost=%d missing-effects=%d duplicated=%d resent-mails=%d stock-off=%d "+
		"dead-letters=%d (poison injected %d) fault=%s recovery=%s",
		r.Scenario, c.Sent, c.Accepted, c.Retried(), c.Refused, c.ServerErrors, c.Throttled, c.Ambiguous, r.StrayServerErrors, c.GaveUp,
		r.Final, r.Confirmed, r.Rejected, r.Cancelled, r.Lost, r.Missing, r.Duplicated, r.Resent, r.StockOff,
		r.DeadLetters, r.Poison, r.Fault.Round(100*time.Millisecond), r.Recovery.Round(100*time.Millisecond))
}
