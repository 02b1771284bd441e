package messaging_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/telemetry"
)

// The crashing consumer of TestCrashLoopDeadLettersOnlyThePoison: a process of its own (this
// test binary again), consuming with the defaults a service has (prefetch 64, 8 handlers),
// that dies on the spot (no ack, no nack, no graceful close) when it handles the poison,
// as a service whose handler hits a fatal bug or runs out of memory does. It appends the
// id of every other message it handled to a file before acking it.
const (
	crashConsumerURL  = "WARREN_TEST_CRASH_CONSUMER_URL"
	crashConsumerFile = "WARREN_TEST_CRASH_CONSUMER_FILE"
	poisonID          = "poison"
)

func TestCrashingConsumerProcess(t *testing.T) {
	url := os.Getenv(crashConsumerURL)
	if url == "" {
		t.Skip("the crashing consumer of TestCrashLoopDeadLettersOnlyThePoison; not a test of its own")
	}
	handled, err := os.OpenFile(os.Getenv(crashConsumerFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	logger := telemetry.NewLogger(os.Stderr, "crashing-consumer", "info")
	broker, err := messaging.Connect(context.Background(), messaging.Config{URL: url}, topology, logger)
	if err != nil {
		t.Fatal(err)
	}
	router, err := broker.NewRouter(messaging.RouterConfig{Logger: logger}, messaging.Consumer{
		Queue: events.QueueInventory,
		Handler: func(msg *message.Message) error {
			if msg.UUID == poisonID {
				os.Exit(3) // the crash: whatever this process holds goes back to the queue
			}
			time.Sleep(20 * time.Millisecond) // some work, so that a crash finds others in flight
			if _, err := fmt.Fprintln(handled, msg.UUID); err != nil {
				return err
			}
			return handled.Sync()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = router.Run(context.Background())
}

// A consumer that crashes on one message, again every time it is restarted, must cost
// that message alone: the broker dead-letters it after the queue's delivery limit
// (x-delivery-limit), and every other message is handled. Each crash returns whatever the
// consumer held unacked, and on a quorum queue every returned message's delivery count
// goes up by one. A consumer that takes its full prefetch at once after a restart would
// bring the healthy messages it holds alongside the poison to the limit too.
func TestCrashLoopDeadLettersOnlyThePoison(t *testing.T) {
	if testing.Short() {
		t.Skip("starts consumer processes against a real broker")
	}
	e := newEnv(t)
	const healthy = 60
	ids := []string{poisonID}
	for i := range healthy {
		ids = append(ids, fmt.Sprintf("healthy-%02d", i))
	}
	for i, id := range ids {
		e.publishRaw("", events.QueueInventory, amqp.Publishing{
			MessageId: id, CorrelationId: fmt.Sprintf("order-%d", i), Type: events.TypeOrderPlaced,
			DeliveryMode: amqp.Persistent, ContentType: "application/json", Body: []byte(`{}`),
		})
	}
	handledFile, err := os.CreateTemp(t.TempDir(), "handled")
	if err != nil {
		t.Fatal(err)
	}
	handledFile.Close()

	dlq := messaging.DeadLetterQueueName(events.QueueInventory)
	readHandled := func() map[string]bool {
		data, err := os.ReadFile(handledFile.Name())
		if err != nil {
			t.Fatal(err)
		}
		handled := map[string]bool{}
		for line := range strings.Lines(string(data)) {
			handled[strings.TrimSpace(line)] = true
		}
		return handled
	}
	settled := func() bool { return e.depth(dlq) > 0 && len(readHandled()) == healthy }
	deadline := time.Now().Add(3 * time.Minute)
	crashes := 0
	for !settled() {
		if time.Now().After(deadline) {
			t.Fatalf("after %d crashes, %s holds %d, %s %d, and %d healthy messages were handled", crashes,
				events.QueueInventory, e.depth(events.QueueInventory), dlq, e.depth(dlq), len(readHandled()))
		}
		if runCrashingConsumer(t, e.url, handledFile.Name(), settled) {
			crashes++
		}
	}

	dead := map[string]bool{}
	for e.depth(dlq) > 0 {
		dead[e.get(dlq).MessageId] = true
	}
	if !dead[poisonID] || len(dead) != 1 {
		t.Errorf("dead-lettered %v after %d crashes; want the poison alone", keys(dead), crashes)
	}
	handled := readHandled()
	for _, id := range ids[1:] {
		if !handled[id] {
			t.Errorf("%s was never handled", id)
		}
	}
	t.Logf("%d crashes; %d healthy messages handled, %d dead-lettered", crashes, len(handled), len(dead))
}

// runCrashingConsumer runs the consumer process until it crashes (true), or until settled
// says all is done or 20 s have passed (false; the process is then killed).
func runCrashingConsumer(t *testing.T, url, handledFile string, settled func() bool) (crashed bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashingConsumerProcess$")
	cmd.Env = append(os.Environ(), crashConsumerURL+"="+url, crashConsumerFile+"="+handledFile)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			if testing.Verbose() {
				t.Log(s.Text())
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		select {
		case err := <-exited:
			var exit *exec.ExitError
			return errors.As(err, &exit) && exit.ExitCode() == 3
		case <-time.After(200 * time.Millisecond):
			if settled() {
				cancel()
				<-exited
				return false
			}
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
