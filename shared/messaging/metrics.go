package messaging

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the consumer-side Prometheus metrics, labelled by queue and message type.
// A nil *Metrics records nothing.
type Metrics struct {
	processed         *prometheus.CounterVec
	failed            *prometheus.CounterVec
	deadLetteredTotal *prometheus.CounterVec
	duration          *prometheus.HistogramVec
}

// NewMetrics registers the messaging metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	labels := []string{"queue", "type"}
	m := &Metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warren_messages_processed_total",
			Help: "Messages a handler processed successfully.",
		}, labels),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warren_messages_failed_total",
			Help: "Handler attempts that returned an error (each retry counts).",
		}, labels),
		deadLetteredTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warren_messages_dead_lettered_total",
			Help: "Messages given up on and sent to their dead-letter queue.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warren_message_handler_duration_seconds",
			Help:    "Time a handler attempt took.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, labels),
	}
	reg.MustRegister(m.processed, m.failed, m.deadLetteredTotal, m.duration)
	return m
}

func (m *Metrics) deadLettered(queue, typ string) {
	if m != nil {
		m.deadLetteredTotal.WithLabelValues(queue, typ).Inc()
	}
}

// middleware measures each handler attempt; it sits inside Retry so that every attempt counts.
func (m *Metrics) middleware(queue string) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		if m == nil {
			return h
		}
		return func(msg *message.Message) ([]*message.Message, error) {
			typ := msg.Metadata.Get(HeaderType)
			start := time.Now()
			out, err := h(msg)
			m.duration.WithLabelValues(queue, typ).Observe(time.Since(start).Seconds())
			if err != nil {
				m.failed.WithLabelValues(queue, typ).Inc()
			} else {
				m.processed.WithLabelValues(queue, typ).Inc()
			}
			return out, err
		}
	}
}
