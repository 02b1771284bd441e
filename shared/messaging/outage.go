package messaging

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v5"
)

// How a held message probes its dependency: the first retry soon (a database restart is
// often over in a second), then no more often than every few seconds, so that a consumer
// resumes within that long of the dependency answering again without hammering it while
// it is down.
const (
	probeInitialInterval = 250 * time.Millisecond
	probeMaxInterval     = 5 * time.Second
)

// holdDuringOutage holds a message whose handler failed because a dependency is down
// (isDown names it) instead of letting it fail: the consumer pauses (p), and the message
// itself is tried again with backoff, for as long as the outage lasts, until it succeeds
// or fails for another reason (which the inner middleware then handles: a dead letter, at
// worst). Each attempt is a whole pass through the inner stack, so it gets its own
// consumer span and its own quick retries of other errors.
//
// It gives up only when the consumer stops (stop closed) or the message's context ends:
// the message is then returned to the queue for the next consumer.
func holdDuringOutage(queue string, p *pause, stop <-chan struct{}, isDown func(error) (string, bool), logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			original := msg.Context()
			out, err := h(msg)
			dependency, down := isDown(err)
			if !down || original.Err() != nil {
				return out, err
			}
			ctx, cancel := context.WithCancel(original)
			defer cancel()
			go func() { // shutting down: return the message now, not after the outage
				select {
				case <-stop:
					cancel()
				case <-ctx.Done():
				}
			}()

			p.hold(dependency, err)
			defer p.release()
			logger.WarnContext(original, "dependency unavailable: consumer paused, message held until it answers",
				"queue", queue, "dependency", dependency, "message_id", msg.UUID, "error", err)
			started := time.Now()
			probes := backoff.NewExponentialBackOff()
			probes.InitialInterval = probeInitialInterval
			probes.MaxInterval = probeMaxInterval
			out, err = backoff.Retry(ctx, func() ([]*message.Message, error) {
				msg.SetContext(ctx) // the previous attempt's middleware replaced it
				out, err := h(msg)
				if dependency, down := isDown(err); down {
					p.failedAgain(dependency, err)
					return out, err
				}
				return out, backoff.Permanent(err) // nil, or a failure the inner stack dealt with
			},
				backoff.WithBackOff(probes),
				backoff.WithMaxElapsedTime(0), // an outage is waited out however long it lasts
				backoff.WithNotify(func(err error, wait time.Duration) {
					logger.DebugContext(original, "dependency still unavailable", "queue", queue,
						"message_id", msg.UUID, "retry_in", wait.String(), "error", err)
				}))
			msg.SetContext(original)
			if ctx.Err() != nil && err != nil {
				return out, fmt.Errorf("message %s held through a %s outage returned to the queue: %w", msg.UUID, dependency, err)
			}
			logger.InfoContext(original, "dependency answers again: held message handled, consumer resumes",
				"queue", queue, "dependency", dependency, "message_id", msg.UUID,
				"held_for", time.Since(started).Round(time.Millisecond).String(), "error", err)
			return out, err
		}
	}
}
