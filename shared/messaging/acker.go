package messaging

// settler is the part of *amqp.Channel that settles deliveries.
type settler interface {
	Ack(tag uint64, multiple bool) error
	Nack(tag uint64, multiple, requeue bool) error
}

// settlement is a handled delivery: acked (its work committed) or nacked (requeued).
type settlement struct {
	tag uint64
	ack bool
}

// acker settles one channel's deliveries with as few frames as it can. Every ack is a frame
// the client writes (a syscall) and the broker processes; a busy consumer finishes many
// messages while one frame is being written. So the acker takes every result that is ready,
// then acks the longest run of finished deliveries from the oldest unsettled one with one
// "multiple" ack. A finished delivery behind an unfinished one (a message being retried) is
// acked on its own at once: waiting for the slow one would hold the broker's prefetch
// window. Nacks (requeue) are sent at once, one by one.
//
// Delivery tags on a channel start at 1 and grow by one per delivery; the acker is given
// every delivery the consumer read, so none is left behind.
type acker struct {
	ch      settler
	results chan settlement
	done    chan struct{}
	report  func(error)

	next    uint64          // the oldest delivery not yet settled
	pending map[uint64]bool // finished deliveries from next on: true waits for a multiple ack, false is settled
}

func newAcker(ch settler, window int, report func(error)) *acker {
	return &acker{
		ch:      ch,
		results: make(chan settlement, window),
		done:    make(chan struct{}),
		report:  report,
		next:    1,
		pending: map[uint64]bool{},
	}
}

// settle queues a delivery's outcome. Call close once every delivery read was settled.
func (a *acker) settle(tag uint64, ack bool) { a.results <- settlement{tag: tag, ack: ack} }

// close sends what is left and returns once the acker has stopped.
func (a *acker) close() {
	close(a.results)
	<-a.done
}

func (a *acker) run() {
	defer close(a.done)
	for s := range a.results {
		a.take(s)
		for more := true; more; {
			select {
			case s, ok := <-a.results:
				if !ok {
					more = false
					break
				}
				a.take(s)
			default:
				more = false
			}
		}
		a.flush()
	}
}

func (a *acker) take(s settlement) {
	if !s.ack {
		a.send(a.ch.Nack(s.tag, false, true))
		a.pending[s.tag] = false
		return
	}
	a.pending[s.tag] = true
}

func (a *acker) flush() {
	var last uint64
	for {
		ack, finished := a.pending[a.next]
		if !finished {
			break
		}
		if ack {
			last = a.next
		}
		delete(a.pending, a.next)
		a.next++
	}
	if last > 0 {
		a.send(a.ch.Ack(last, true)) // every delivery up to last is finished, none is left open
	}
	for tag, ack := range a.pending {
		if ack {
			a.send(a.ch.Ack(tag, false))
			a.pending[tag] = false
		}
	}
}

func (a *acker) send(err error) {
	if err != nil && a.report != nil {
		a.report(err)
	}
}
