package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/warrenhq/warren/shared/auth/login"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/livepage"
	"github.com/warrenhq/warren/shared/messaging"
)

// The live page, as a person uses it, in a real (headless) Chromium: "place order" shows the
// order's row light up every step to confirmed, "burst of 10" ten more, and "poison
// message" a dead letter in the queues panel. The screenshots are the README's
// (docs/images/live-*.png).
func TestLivePage(t *testing.T) {
	s := system(t)
	browser := chromium(t)

	// The page in this process, on the system's published ports, as a client of it like
	// any other: it logs in as alice and places orders through the order API.
	var password string
	for _, u := range s.Identity.users {
		if u.Name == Alice {
			password = u.Password
		}
	}
	// Prometheus and Alertmanager as compose runs them, so that the page's queues and
	// alerts panels read the real thing (shared/livepage's own tests cover an unreachable
	// Prometheus).
	prom, err := s.StartMonitoring(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	prometheus := prom.URL()
	page, err := livepage.New(livepage.Config{
		OrderURL: s.Order.URL(), JaegerURL: s.Jaeger.URL(), PrometheusURL: prometheus,
		PoisonAMQPURL: s.AMQPURL, PoisonQueue: events.QueueAnalytics,
		Login: login.Config{Issuer: s.Identity.Issuer, ClientID: "warren-cli", RedirectURL: "http://127.0.0.1:8400/callback",
			Audience: []string{"warren-api"}},
		User: Alice, Password: password, PollInterval: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = page.Run(runCtx); close(stopped) }()
	srv := httptest.NewServer(page.Handler()) // on 127.0.0.1
	t.Cleanup(func() { stop(); <-stopped; srv.Close() })

	ctx, cancel := chromedp.NewExecAllocator(t.Context(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1500, 900))...)
	defer cancel()
	ctx, cancel = chromedp.NewContext(ctx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()

	shots, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	shots = filepath.Join(shots, "docs", "images")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	screenshot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, name), png, 0o644)
		})
	}

	// One order: its row reaches confirmed with every step lit.
	start := time.Now()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL),
		chromedp.WaitVisible(`#stream.up`),
		chromedp.Click(`#place`),
		poll(`(() => { const tr = document.querySelector('#orders tbody tr');
			return !!tr && tr.dataset.status === 'confirmed' &&
				[...tr.querySelectorAll('td.step')].every(td => td.classList.contains('done') || td.classList.contains('skipped')); })()`, 60*time.Second),
		screenshot("live-order.png"),
	); err != nil {
		t.Fatalf("one order through the page: %v", err)
	}
	t.Logf("live: one order confirmed, every step lit, %s after the click", time.Since(start).Round(100*time.Millisecond))

	steps, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('#orders tbody tr:first-child td.step.done')].map(td => td.dataset.step)`))
	if err != nil {
		t.Fatal(err)
	}
	// sms texts only the confirmations of its regions (events.DefaultSMSRegions): the first
	// order's region says whether its sms step is done or skipped.
	region, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`document.querySelector('#orders tbody tr:first-child td.what').textContent.split(' ')[0]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"placed", "published", "inventory", "email", "sms", "analytics", "settled"}
	if !slices.Contains(events.DefaultSMSRegions, events.Region(region)) {
		want = slices.DeleteFunc(want, func(s string) bool { return s == "sms" })
		skipped, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
			`document.querySelector('#orders tbody tr:first-child td.step[data-step="sms"]').classList.contains('skipped')`))
		if err != nil || !skipped {
			t.Errorf("an order of %s, which sms does not text: its sms step is not skipped (%v)", region, err)
		}
	}
	if fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Errorf("an order of %s: steps lit %v, want %v", region, steps, want)
	}

	// The panels read Prometheus: each queue with its consumers.
	if err := chromedp.Do(ctx,
		poll(`document.querySelector('#queues-status').textContent.startsWith('from Prometheus') &&
			Number(document.querySelector('#queues tr[data-queue="`+events.QueueEmail+`"] td:nth-child(4)')?.textContent) > 0`, 60*time.Second),
	); err != nil {
		status, _ := chromedp.Run(ctx, chromedp.Text(`#queues-status`))
		t.Fatalf("the queues panel never showed %s's consumers from Prometheus (status %q): %v", events.QueueEmail, status, err)
	}

	// A burst of ten: ten more rows, all confirmed.
	start = time.Now()
	if err := chromedp.Do(ctx,
		chromedp.Click(`#burst`),
		poll(`(() => { const rows = [...document.querySelectorAll('#orders tbody tr')];
			return rows.length === 11 && rows.every(tr => tr.dataset.status === 'confirmed' &&
				[...tr.querySelectorAll('td.step')].every(td => td.classList.contains('done') || td.classList.contains('skipped'))); })()`, 90*time.Second),
	); err != nil {
		t.Fatalf("burst of 10: %v", err)
	}
	t.Logf("live: burst of 10 confirmed, every step lit, %s after the click", time.Since(start).Round(100*time.Millisecond))

	// Poison: the dead letter shows in the queues panel (Prometheus's figure, or the
	// broker's count of the dead-letter queue when Prometheus is not there).
	dlq := messaging.DeadLetterQueueName(events.QueueAnalytics)
	deadLetters := fmt.Sprintf(`(() => { const td = document.querySelector('#queues tr[data-queue=%q] td.dlq');
		return td ? Number(td.dataset.deadLetters) : NaN; })()`, events.QueueAnalytics)
	before, err := chromedp.Run(ctx, chromedp.Poll[float64](deadLetters+` >= 0 ? `+deadLetters+` + 1 : false`,
		chromedp.WithPollingTimeout(30*time.Second)))
	before-- // the count plus one: a count of 0 is falsy and would not end the poll
	if err != nil {
		t.Fatalf("the queues panel shows no dead-letter count for %s: %v", events.QueueAnalytics, err)
	}
	t.Cleanup(func() { drainPoison(t, s, dlq) })
	start = time.Now()
	if err := chromedp.Do(ctx,
		chromedp.WaitEnabled(`#poison`),
		chromedp.Click(`#poison`),
		poll(fmt.Sprintf(`%s > %v`, deadLetters, before), 60*time.Second),
		poll(`document.querySelector('#poisons li:not(.hint)') !== null`, 5*time.Second),
		// Prometheus's WarrenDeadLetters rule fires at once (no for:) on the next evaluation.
		poll(`[...document.querySelectorAll('#alerts li.firing')].some(li => li.textContent.startsWith('WarrenDeadLetters'))`, 90*time.Second),
		screenshot("live-poison.png"),
	); err != nil {
		t.Fatalf("poison message: %v", err)
	}
	t.Logf("live: poison message in %s and WarrenDeadLetters firing on the page %s after the click (dead letters %v before)", dlq,
		time.Since(start).Round(100*time.Millisecond), before)
}

// chromium is the path of the Chromium the test drives: Debian's package chromium. Under
// CI=true a missing one fails the test; elsewhere it skips it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium: install the package chromium (.ci/run does)")
	}
	t.Skip("no Chromium on this machine: apt-get install chromium")
	return ""
}

// poll waits until the JavaScript expression is true.
func poll(expr string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(200*time.Millisecond))
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// drainPoison takes the page's poison messages out of dlq, so that no other test finds
// them there.
func drainPoison(t *testing.T, s *System, dlq string) {
	ch := amqpChannel(t, s)
	for {
		d, ok, err := ch.Get(dlq, false)
		if err != nil || !ok {
			return
		}
		if strings.HasPrefix(d.MessageId, "live-poison-") {
			_ = d.Ack(false)
			continue
		}
		_ = d.Nack(false, true)
		return
	}
}
