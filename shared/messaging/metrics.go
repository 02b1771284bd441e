package messaging

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// UnknownType is the "type" label of every message whose type header is not one of the
// types Metrics was given.
const UnknownType = "unknown"

// Metrics are the consumer-side Prometheus metrics, labelled by queue and message type.
// A nil *Metrics records nothing.
//
// Both labels take bounded values: the queue is the consumer's own (NewRouter checks it
// against the topology), and the type, which comes from the message, is one of the known
// types or UnknownType. Anyone who may publish to a queue could otherwise add a time
// series per distinct header until the service runs out of memory, and a header that is not
// valid UTF-8 would make client_golang panic outside the Recoverer middleware.
type Metrics struct {
	types             map[string]bool // the type label values besides UnknownType
	processed         *prometheus.CounterVec
	failed            *prometheus.CounterVec
	deadLetteredTotal *prometheus.CounterVec
	duration          *prometheus.HistogramVec
	paused            *prometheus.GaugeVec
}

// NewMetrics registers the messaging metrics with reg. knownTypes are the message types
// counted under their own name (events.Types for Warren's services); any other type is
// counted as UnknownType.
func NewMetrics(reg prometheus.Registerer, knownTypes ...string) *Metrics {
	labels := []string{"queue", "type"}
	m := &Metrics{
		types: make(map[string]bool, len(knownTypes)),
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
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "warren_consumer_paused",
			Help: "1 while a queue's consumer takes no new messages because a dependency its handler needs is down.",
		}, []string{"queue"}),
	}
	for _, t := range knownTypes {
		m.types[t] = true
	}
	reg.MustRegister(m.processed, m.failed, m.deadLetteredTotal, m.duration, m.paused)
	return m
}

func (m *Metrics) deadLettered(queue, typ string) {
	if m != nil {
		m.deadLetteredTotal.WithLabelValues(queue, m.typeLabel(typ)).Inc()
	}
}

// typeLabel maps a type header onto the bounded set of label values.
func (m *Metrics) typeLabel(typ string) string {
	if m.types[typ] {
		return typ
	}
	return UnknownType
}

// pausedGauge is queue's warren_consumer_paused; nil when m is.
func (m *Metrics) pausedGauge(queue string) prometheus.Gauge {
	if m == nil {
		return nil
	}
	return m.paused.WithLabelValues(queue)
}

// middleware measures each handler attempt; it sits inside Retry so that every attempt counts.
func (m *Metrics) middleware(queue string) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		if m == nil {
			return h
		}
		return func(msg *message.Message) ([]*message.Message, error) {
			typ := m.typeLabel(msg.Metadata.Get(HeaderType))
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
