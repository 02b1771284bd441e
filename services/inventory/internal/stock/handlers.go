package stock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/propagation"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/outbox"
	"github.com/warrenhq/warren/shared/postgres"
)

// Handlers handle the messages the inventory service consumes.
type Handlers struct {
	pool       *pgxpool.Pool
	ledger     *postgres.Ledger
	store      *Store
	replier    *messaging.Replier
	propagator propagation.TextMapPropagator
	logger     *slog.Logger
	// failSKUs and crashSKUs are fault injection (see Faults).
	failSKUs, crashSKUs map[string]bool
}

// Faults are injected faults, for demonstrating and testing retries and dead-lettering;
// leave them empty in production.
type Faults struct {
	// FailSKUs: an order holding one fails with a transient error (ErrWarehouseDown), as
	// if the warehouse system behind it were down: retried, then dead-lettered.
	FailSKUs []string
	// CrashSKUs: the process exits at once while handling an order holding one, as a
	// service does on a fatal bug: the broker's delivery limit dead-letters that order.
	CrashSKUs []string
}

// CrashExitCode is the exit status of a crash injected by Faults.CrashSKUs.
const CrashExitCode = 70

// NewHandlers returns the inventory's message handlers.
func NewHandlers(pool *pgxpool.Pool, ledger *postgres.Ledger, store *Store, replier *messaging.Replier, p propagation.TextMapPropagator,
	faults Faults, logger *slog.Logger) *Handlers {
	set := func(skus []string) map[string]bool {
		m := map[string]bool{}
		for _, sku := range skus {
			m[sku] = true
		}
		return m
	}
	return &Handlers{pool: pool, ledger: ledger, store: store, replier: replier, propagator: p, logger: logger,
		failSKUs: set(faults.FailSKUs), crashSKUs: set(faults.CrashSKUs)}
}

// ErrWarehouseDown is the transient failure injected for Config.FailSKUs.
var ErrWarehouseDown = errors.New("warehouse system unavailable")

// OrderEvents handles the inventory's copy of the order.events fanout.
func (h *Handlers) OrderEvents() message.NoPublishHandlerFunc {
	return messaging.Dispatcher{
		events.TypeOrderPlaced:    messaging.Handle(h.orderPlaced),
		events.TypeOrderCancelled: messaging.Handle(h.orderCancelled),
	}.Handle
}

// orderPlaced reserves the order's stock and announces the outcome on the topic exchange,
// all in one transaction with the processed-message record: a redelivered OrderPlaced
// finds its record and changes nothing. The record, the tombstone check, the locks and the
// reservation are one statement: BEGIN, it, the outbox insert, COMMIT.
func (h *Handlers) orderPlaced(ctx context.Context, e events.OrderPlaced, msg *message.Message) error {
	for _, it := range e.Items {
		if h.crashSKUs[it.SKU] {
			h.logger.ErrorContext(ctx, "fault injection: crashing", "order_id", e.OrderID, "sku", it.SKU)
			os.Exit(CrashExitCode)
		}
		if h.failSKUs[it.SKU] {
			return fmt.Errorf("reserve %s: sku %s: %w", e.OrderID, it.SKU, ErrWarehouseDown)
		}
	}
	return postgres.InTx(ctx, h.pool, func(tx pgx.Tx) error {
		d, err := h.ledger.Delivery(ctx, tx, events.QueueInventory, msg.UUID, messaging.OccurredAt(msg))
		if err != nil || d == nil {
			return err
		}
		r, err := h.store.Reserve(ctx, tx, *d, e.OrderID, e.Items)
		if err != nil || !r.First || r.Cancelled {
			return err
		}
		var out *message.Message
		var key string
		if len(r.Missing) > 0 {
			key = events.InventoryOutOfStockKey(e.Region)
			out, err = messaging.NewEvent(events.TypeStockOutOfStock, e.OrderID,
				events.StockOutOfStock{OrderID: e.OrderID, Region: e.Region, MissingSKU: r.Missing})
		} else {
			key = events.InventoryReservedKey(e.Region)
			out, err = messaging.NewEvent(events.TypeStockReserved, e.OrderID,
				events.StockReserved{OrderID: e.OrderID, Region: e.Region, Items: e.Items})
		}
		if err != nil {
			return err
		}
		h.logger.InfoContext(ctx, "order handled", "order_id", e.OrderID, "reserved", len(r.Missing) == 0, "missing", r.Missing)
		return outbox.Store(ctx, tx, h.propagator, messaging.Topic(events.ExchangeTopic, key), out)
	})
}

// orderCancelled releases what the order holds and announces it.
func (h *Handlers) orderCancelled(ctx context.Context, e events.OrderCancelled, msg *message.Message) error {
	return postgres.InTx(ctx, h.pool, func(tx pgx.Tx) error {
		d, err := h.ledger.Delivery(ctx, tx, events.QueueInventory, msg.UUID, messaging.OccurredAt(msg))
		if err != nil || d == nil {
			return err
		}
		first, released, err := h.store.Release(ctx, tx, *d, e.OrderID)
		if err != nil || !first || !released {
			return err
		}
		out, err := messaging.NewEvent(events.TypeStockReleased, e.OrderID, events.StockReleased{OrderID: e.OrderID, Region: e.Region})
		if err != nil {
			return err
		}
		h.logger.InfoContext(ctx, "stock released", "order_id", e.OrderID)
		return outbox.Store(ctx, tx, h.propagator, messaging.Topic(events.ExchangeTopic, events.InventoryReleasedKey(e.Region)), out)
	})
}

// StockQueries answers StockQuery requests (request/reply over the rpc exchange). A read
// needs no idempotency: answering twice is harmless.
//
// A query that does not decode or breaks the contract's rules is answered too, with
// StockLevel.Invalid saying why, and acked: the requester learns at once that its question
// is wrong instead of waiting out its timeout, and a question answered is not lost.
func (h *Handlers) StockQueries() message.NoPublishHandlerFunc {
	return messaging.Dispatcher{
		events.TypeStockQuery: h.stockQuery,
	}.Handle
}

func (h *Handlers) stockQuery(msg *message.Message) error {
	ctx := msg.Context()
	q, err := messaging.Decode[events.StockQuery](msg.Payload)
	level := events.StockLevel{SKU: q.SKU}
	if err != nil {
		h.logger.WarnContext(ctx, "invalid stock query answered as such", "message_id", msg.UUID, "error", err)
		level.Invalid = err.Error()
	} else if level, err = h.level(ctx, q.SKU); err != nil {
		return err
	}
	reply, err := messaging.NewEvent(events.TypeStockLevel, "", level)
	if err != nil {
		return err
	}
	if err := h.replier.Reply(ctx, msg, reply); err != nil {
		return fmt.Errorf("stock query %q: %w", q.SKU, err)
	}
	return nil
}

// level is the answer to a valid query for sku.
func (h *Handlers) level(ctx context.Context, sku string) (events.StockLevel, error) {
	n, err := h.store.Level(ctx, sku)
	switch {
	case errors.Is(err, ErrUnknownSKU):
		return events.StockLevel{SKU: sku}, nil
	case err != nil:
		return events.StockLevel{}, err
	}
	return events.StockLevel{SKU: sku, Available: n, Found: true}, nil
}
