package chaos

import (
	"context"
	"testing"
	"time"
)

// stallFor outlasts, several times over, a request's deadline (REQUEST_TIMEOUT, 10 s), the
// load's attempt timeout below and the outbox relay's 10 s lease.
const stallFor = 30 * time.Second

// PostgreSQL freezes for 30 s (docker pause: its connections stay open and nothing answers
// on them, as a stalled disk or a stop-the-world pause looks to its clients) while
// customers order. The clients give up on a request after 3 s and retry it with the same
// Idempotency-Key, so several attempts of one order wait on the frozen server at once, and
// some of them have their COMMIT already in its buffers. When it thaws, every key has
// placed one order (checkOneOrderPerKey, and no mail or event about an order the load does
// not know), the consumers carry on where they were, and nothing is lost or dead-lettered.
//
// Unavoidable: order's API answers 503 to requests that reach their REQUEST_TIMEOUT on the
// frozen database; those are sent during the stall.
func TestPostgresStalled(t *testing.T) {
	sc := newScenario(t, "postgres-stalled")
	sc.load.AttemptTimeout = 3 * time.Second
	sc.load.Deadline = stallFor + 3*time.Minute
	sc.startLoad()
	sc.fault("postgres frozen (docker pause) for 30 s", func(ctx context.Context) error {
		if err := sc.sys.PauseContainer(ctx, "postgres"); err != nil {
			return err
		}
		sleep(ctx, stallFor)
		if err := sc.sys.UnpauseContainer(ctx, "postgres"); err != nil {
			return err
		}
		return sc.waitReady(ctx, allServices...)
	})
	if c := sc.run.Counts(); c.Ambiguous == 0 {
		t.Errorf("no request timed out during the stall (%+v): the scenario proved nothing about retried keys", c)
	}
	sc.finish()
}
