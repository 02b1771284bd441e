// Package chaos proves that Warren loses nothing and does nothing twice under faults. Each
// scenario starts a whole system of its own (e2e.Start, every port fixed so that
// containers can be restarted), places a bounded load of orders over HTTP, injects one
// fault while the load runs, lets the system recover, and then reconciles everything:
//
//   - every accepted order reaches a final state (confirmed, rejected or cancelled);
//   - each expected mail (Mailpit) and text (sms) exists exactly once. Mailpit keeps one
//     mail per Message-ID, as a real mailbox does; mails the email service delivered a
//     second time are counted apart as resent-mails, and fail the scenario unless its
//     fault explains them (email killed, or the mail server stopped, between the server
//     taking a mail and email recording it: a window no SMTP client can close);
//   - no 5xx answer came before the fault or to a request sent after it, unless the
//     scenario says why;
//   - stock is the initial level less what the confirmed orders hold;
//   - the analytics totals match the orders;
//   - the dead-letter queues hold exactly the poison the test injected, each once;
//   - no work queue holds a message, ready or unacknowledged.
//
// The load retries requests refused during the fault (connection refused, 5xx, 429,
// timeouts) with backoff, as a client should, and counts them. Each scenario prints one
// line of figures (Report) with the fault's duration and the recovery time (how long an
// order placed right after the fault took to be settled), e.g.
//
//	chaos rabbitmq-restart: sent=1201 accepted=1201 retried=0 (…) final=1201 (confirmed=… rejected=… cancelled=…) lost=0 missing-effects=0 duplicated=0 resent-mails=0 stock-off=0 dead-letters=0 (poison injected 0) fault=7.9s recovery=4.2s
//
// The scenarios take about a minute each and run only when asked (make test and make
// chaos ask):
//
//	WARREN_CHAOS=1 go test -count=1 -v -timeout 60m ./chaos     # in e2e/, after make images; or: make chaos
//	WARREN_CHAOS=1 go test -count=1 -v -run TestPostgresRestart ./chaos
//
// Files: load.go places the orders; reconcile.go waits for the system to settle and
// effects.go checks what it did; broker.go reads queues and dead letters; poison.go makes
// the poison; chaos_test.go and the other _test.go files hold the scenarios, and
// scenario_test.go what they share.
package chaos
