package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

// StockClient asks inventory for stock levels over request/reply. Inventory owns stock,
// so the order service never keeps a copy that could go stale; the price is a round trip.
type StockClient struct {
	requester *messaging.Requester
	timeout   time.Duration
}

// NewStockClient returns a StockClient that gives inventory timeout to answer.
func NewStockClient(requester *messaging.Requester, timeout time.Duration) *StockClient {
	return &StockClient{requester: requester, timeout: timeout}
}

// Level returns how many of sku inventory has available. It returns ErrUnknownSKU when
// inventory does not stock sku, an error matching messaging.ErrRequestTimeout when no
// answer came within the timeout, and ErrUnavailable when the question could not be sent
// (matching messaging.ErrBlocked too while the broker blocks publishes).
func (c *StockClient) Level(ctx context.Context, sku string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	request, err := messaging.NewEvent(events.TypeStockQuery, "", events.StockQuery{SKU: sku})
	if err != nil {
		return 0, fmt.Errorf("stock level %s: %w", sku, err)
	}
	reply, err := c.requester.Request(ctx, events.ExchangeRPC, events.RoutingKeyStockQuery, request)
	switch {
	case errors.Is(err, messaging.ErrRequestTimeout):
		return 0, fmt.Errorf("stock level %s: %w", sku, err)
	case err != nil:
		return 0, fmt.Errorf("stock level %s: %w: %w", sku, ErrUnavailable, err)
	}
	level, err := messaging.Decode[events.StockLevel](reply.Payload)
	if err != nil {
		return 0, fmt.Errorf("stock level %s: %w", sku, err)
	}
	if !level.Found {
		return 0, fmt.Errorf("stock level %s: %w", sku, ErrUnknownSKU)
	}
	return level.Available, nil
}
