package messaging

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// broker keeps a channel's unsettled deliveries as RabbitMQ does and refuses what RabbitMQ
// refuses: settling a tag that is not outstanding closes the channel (PRECONDITION_FAILED).
type broker struct {
	outstanding map[uint64]bool
	acked       map[uint64]bool
	nacked      map[uint64]bool
	frames      int
	err         error
}

func newBroker(n int) *broker {
	b := &broker{outstanding: map[uint64]bool{}, acked: map[uint64]bool{}, nacked: map[uint64]bool{}}
	for tag := uint64(1); tag <= uint64(n); tag++ {
		b.outstanding[tag] = true
	}
	return b
}

func (b *broker) settle(tag uint64, multiple bool, into map[uint64]bool) error {
	b.frames++
	if !b.outstanding[tag] {
		b.err = fmt.Errorf("unknown delivery tag %d", tag)
		return b.err
	}
	for t := range b.outstanding {
		if t == tag || (multiple && t < tag) {
			delete(b.outstanding, t)
			into[t] = true
		}
	}
	return nil
}

func (b *broker) Ack(tag uint64, multiple bool) error { return b.settle(tag, multiple, b.acked) }
func (b *broker) Nack(tag uint64, multiple, _ bool) error {
	return b.settle(tag, multiple, b.nacked)
}

// Whatever order deliveries finish in, and however the results are grouped into flushes,
// every delivery is settled exactly as its handler said, with no frame the broker refuses.
func TestAckerSettlesEveryDeliveryAsItsHandlerSaid(t *testing.T) {
	for seed := range uint64(500) {
		rng := rand.New(rand.NewPCG(seed, 0))
		n := 1 + rng.IntN(80)
		b := newBroker(n)
		a := newAcker(b, n, nil)
		want := map[uint64]bool{}
		order := rng.Perm(n)
		for i, p := range order {
			tag := uint64(p + 1)
			ack := rng.IntN(10) > 0
			want[tag] = ack
			a.take(settlement{tag: tag, ack: ack})
			if rng.IntN(3) == 0 || i == n-1 { // a flush after one or several results
				a.flush()
			}
		}
		if b.err != nil {
			t.Fatalf("seed %d: %v", seed, b.err)
		}
		if len(b.outstanding) != 0 {
			t.Fatalf("seed %d: %d deliveries left unsettled", seed, len(b.outstanding))
		}
		for tag, ack := range want {
			if ack != b.acked[tag] || ack == b.nacked[tag] {
				t.Fatalf("seed %d: tag %d acked=%v nacked=%v, want ack=%v", seed, tag, b.acked[tag], b.nacked[tag], ack)
			}
		}
	}
}

// Deliveries that finish together in order cost one frame.
func TestAckerAcksARunWithOneFrame(t *testing.T) {
	b := newBroker(64)
	a := newAcker(b, 64, nil)
	for tag := uint64(1); tag <= 64; tag++ {
		a.take(settlement{tag: tag, ack: true})
	}
	a.flush()
	if b.frames != 1 || len(b.outstanding) != 0 {
		t.Errorf("%d frames, %d left; want 1 frame and none left", b.frames, len(b.outstanding))
	}
}

// A slow delivery does not hold back the acks of those that finished after it.
func TestAckerDoesNotWaitForASlowDelivery(t *testing.T) {
	b := newBroker(10)
	a := newAcker(b, 10, nil)
	for tag := uint64(2); tag <= 10; tag++ {
		a.take(settlement{tag: tag, ack: true})
	}
	a.flush()
	if len(b.outstanding) != 1 || !b.outstanding[1] {
		t.Errorf("outstanding %v, want only the slow delivery 1", b.outstanding)
	}
	a.take(settlement{tag: 1, ack: true})
	a.flush()
	if len(b.outstanding) != 0 || b.err != nil {
		t.Errorf("outstanding %v, err %v", b.outstanding, b.err)
	}
}
