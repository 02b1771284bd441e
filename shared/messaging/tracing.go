package messaging

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentationName names Warren's messaging spans' tracer.
const InstrumentationName = "github.com/warrenhq/warren/shared/messaging"

// tracing creates the spans the OpenTelemetry messaging conventions name: "publish
// <exchange>" (PRODUCER) around each publish and "process <queue>" (CONSUMER) around each
// handling, and carries the W3C trace context in the message metadata, which the marshaler
// turns into AMQP headers.
type tracing struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

func newTracing(tp trace.TracerProvider, p propagation.TextMapPropagator) tracing {
	return tracing{tracer: tp.Tracer(InstrumentationName), propagator: p}
}

// InjectContext writes the trace context of ctx into msg's metadata. Code that stores a
// message for later publishing (the outbox) calls it so that the eventual producer span
// continues the trace of the request that created the message.
func InjectContext(ctx context.Context, p propagation.TextMapPropagator, msg *message.Message) {
	p.Inject(ctx, propagation.MapCarrier(msg.Metadata))
}

// publisher decorates next with producer spans.
func (t tracing) publisher(next message.Publisher) message.Publisher {
	return &tracingPublisher{next: next, tracing: t}
}

type tracingPublisher struct {
	next message.Publisher
	tracing
}

func (p *tracingPublisher) Publish(topic string, msgs ...*message.Message) error {
	exchange, key := SplitTopic(topic)
	spans := make([]trace.Span, 0, len(msgs))
	for _, msg := range msgs {
		ctx := msg.Context()
		if !trace.SpanContextFromContext(ctx).IsValid() {
			// A message relayed from the outbox has no live context, only the one its
			// creator stored in its metadata.
			ctx = p.propagator.Extract(ctx, propagation.MapCarrier(msg.Metadata))
		}
		ctx, span := p.tracer.Start(ctx, "publish "+displayExchange(exchange),
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				semconv.MessagingSystemRabbitMQ,
				semconv.MessagingOperationTypeSend,
				semconv.MessagingOperationName("publish"),
				semconv.MessagingDestinationName(exchange),
				semconv.MessagingRabbitMQDestinationRoutingKey(key),
				semconv.MessagingMessageID(msg.UUID),
				attribute.String("messaging.message.type", msg.Metadata.Get(HeaderType)),
			))
		p.propagator.Inject(ctx, propagation.MapCarrier(msg.Metadata))
		msg.SetContext(ctx)
		spans = append(spans, span)
	}
	err := p.next.Publish(topic, msgs...)
	for _, span := range spans {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "publish failed")
		}
		span.End()
	}
	return err
}

func (p *tracingPublisher) Close() error { return p.next.Close() }

// middleware starts a consumer span for each delivery from queue, as a child of the
// producer span whose context travelled in the headers.
func (t tracing) middleware(queue string) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := t.propagator.Extract(msg.Context(), propagation.MapCarrier(msg.Metadata))
			ctx, span := t.tracer.Start(ctx, "process "+queue,
				trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(
					semconv.MessagingSystemRabbitMQ,
					semconv.MessagingOperationTypeProcess,
					semconv.MessagingOperationName("process"),
					semconv.MessagingDestinationName(queue),
					semconv.MessagingRabbitMQDestinationRoutingKey(msg.Metadata.Get(HeaderRoutingKey)),
					semconv.MessagingMessageID(msg.UUID),
					attribute.String("messaging.message.type", msg.Metadata.Get(HeaderType)),
				))
			defer span.End()
			msg.SetContext(ctx)
			out, err := h(msg)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, "handler failed")
			}
			return out, err
		}
	}
}

func displayExchange(exchange string) string {
	if exchange == "" {
		return "(default)"
	}
	return exchange
}
