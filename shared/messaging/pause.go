package messaging

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// pause is what one queue's consumer knows of the outages of its dependencies. While any
// handler holds a message because a dependency is down (see holdDuringOutage), the
// consumer is paused: its subscriber hands out no further delivery, the broker's readiness
// check fails naming the queue and the dependency, and warren_consumer_paused is 1. It
// resumes by itself when the last held message gets through.
//
// Pausing the whole consumer, rather than failing every message one after another, is
// what keeps valid work out of the dead-letter queue: a message that is never handed to a
// handler cannot fail, and one that is not requeued does not use up the quorum queue's
// delivery limit (RabbitMQ 4.0 counts every requeue).
type pause struct {
	queue string
	gauge prometheus.Gauge // nil without metrics

	mu         sync.Mutex
	held       int           // messages held by handlers
	resumed    chan struct{} // closed when held drops to zero; nil while running
	since      time.Time
	dependency string
	cause      error
}

func newPause(queue string, gauge prometheus.Gauge) *pause {
	if gauge != nil {
		gauge.Set(0)
	}
	return &pause{queue: queue, gauge: gauge}
}

// hold records a message held because dependency is down (cause says how); the consumer
// pauses with the first one. Every hold needs a release.
func (p *pause) hold(dependency string, cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held == 0 {
		p.resumed = make(chan struct{})
		p.since = time.Now()
		if p.gauge != nil {
			p.gauge.Set(1)
		}
	}
	p.held++
	p.dependency, p.cause = dependency, cause
}

// failedAgain records the latest failure of a held message's retry, for readiness.
func (p *pause) failedAgain(dependency string, cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dependency, p.cause = dependency, cause
}

// release ends a hold; the consumer resumes with the last one.
func (p *pause) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held--
	if p.held == 0 {
		close(p.resumed)
		p.resumed = nil
		if p.gauge != nil {
			p.gauge.Set(0)
		}
	}
}

// wait returns true at once while the consumer runs, and otherwise when it resumes; false
// if stop is closed first.
func (p *pause) wait(stop <-chan struct{}) bool {
	for {
		p.mu.Lock()
		resumed := p.resumed
		p.mu.Unlock()
		if resumed == nil {
			return true
		}
		select {
		case <-resumed:
		case <-stop:
			return false
		}
	}
}

// check is nil while the consumer runs, and otherwise says since when and why it paused.
func (p *pause) check() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held == 0 {
		return nil
	}
	return fmt.Errorf("consumer of %s paused for %s, %d message(s) held: %s unavailable: %w",
		p.queue, time.Since(p.since).Round(time.Second), p.held, p.dependency, p.cause)
}
