// Package events holds Warren's message contracts: the versioned JSON payloads the services
// exchange, their type names, and the routing keys they travel under.
//
// A contract is the only thing two services share. Consumers must tolerate unknown fields
// (json.Unmarshal does) so that a producer can add fields without a coordinated release; a
// breaking change gets a new type name (for example "order.placed.v2") instead.
package events

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Type names carried in the "type" header of every message. The suffix is the contract's
// major version.
const (
	TypeOrderPlaced     = "order.placed.v1"
	TypeOrderCancelled  = "order.cancelled.v1"
	TypeOrderConfirmed  = "order.confirmed.v1"
	TypeOrderRejected   = "order.rejected.v1"
	TypeStockReserved   = "inventory.reserved.v1"
	TypeStockOutOfStock = "inventory.out_of_stock.v1"
	TypeStockReleased   = "inventory.released.v1"
	TypeStockQuery      = "inventory.stock_query.v1"
	TypeStockLevel      = "inventory.stock_level.v1"
)

// Types lists every type above: the values a metric may label a message's type with
// (messaging.NewMetrics), since a type header can hold anything.
var Types = []string{
	TypeOrderPlaced, TypeOrderCancelled, TypeOrderConfirmed, TypeOrderRejected,
	TypeStockReserved, TypeStockOutOfStock, TypeStockReleased, TypeStockQuery, TypeStockLevel,
}

// ErrMalformed marks a payload that can never be processed: bad JSON or a failed validation.
// Consumers dead-letter such messages at once instead of retrying them.
var ErrMalformed = errors.New("malformed event")

// Region is where an order ships to. It is part of every topic routing key.
type Region string

// The regions Warren serves.
const (
	RegionEurope   Region = "europe"
	RegionAsia     Region = "asia"
	RegionAmericas Region = "americas"
)

// Regions lists every valid region, in a stable order.
var Regions = []Region{RegionEurope, RegionAsia, RegionAmericas}

// Valid reports whether r is one of Regions.
func (r Region) Valid() bool {
	for _, known := range Regions {
		if r == known {
			return true
		}
	}
	return false
}

// ParseRegions parses a comma-separated list such as "europe,americas".
func ParseRegions(list string) ([]Region, error) {
	var out []Region
	for _, part := range strings.Split(list, ",") {
		r := Region(strings.TrimSpace(part))
		if r == "" {
			continue
		}
		if !r.Valid() {
			return nil, fmt.Errorf("unknown region %q", r)
		}
		out = append(out, r)
	}
	return out, nil
}

// Customer is who placed an order and how to reach them.
type Customer struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Phone string `json:"phone"`
}

// Item is one line of an order.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
	// UnitPriceCents is the price the order was accepted at, for revenue figures.
	UnitPriceCents int64 `json:"unit_price_cents"`
}

// OrderPlaced is published on the order.events fanout when an order is accepted.
type OrderPlaced struct {
	OrderID    string    `json:"order_id"`
	Customer   Customer  `json:"customer"`
	Region     Region    `json:"region"`
	Items      []Item    `json:"items"`
	TotalCents int64     `json:"total_cents"`
	PlacedAt   time.Time `json:"placed_at"`
}

// Validate checks what every consumer relies on.
func (e OrderPlaced) Validate() error {
	switch {
	case e.OrderID == "":
		return fmt.Errorf("%w: order_id is empty", ErrMalformed)
	case !e.Region.Valid():
		return fmt.Errorf("%w: region %q is unknown", ErrMalformed, e.Region)
	case len(e.Items) == 0:
		return fmt.Errorf("%w: no items", ErrMalformed)
	}
	for i, it := range e.Items {
		if err := CheckSKU(fmt.Sprintf("items[%d].sku", i), it.SKU); err != nil {
			return err
		}
		if it.Quantity <= 0 {
			return violation(fmt.Sprintf("items[%d].quantity", i), "must be positive")
		}
	}
	return nil
}

// OrderCancelled is published on the order.events fanout when an order is cancelled.
type OrderCancelled struct {
	OrderID     string    `json:"order_id"`
	Region      Region    `json:"region"`
	Customer    Customer  `json:"customer"`
	Reason      string    `json:"reason,omitempty"`
	CancelledAt time.Time `json:"cancelled_at"`
}

// Validate checks what every consumer relies on.
func (e OrderCancelled) Validate() error {
	if e.OrderID == "" {
		return fmt.Errorf("%w: order_id is empty", ErrMalformed)
	}
	return nil
}

// StockReserved is published by inventory when every item of an order was reserved.
type StockReserved struct {
	OrderID string `json:"order_id"`
	Region  Region `json:"region"`
	Items   []Item `json:"items"`
}

// StockOutOfStock is published by inventory when an order cannot be filled; nothing was
// reserved.
type StockOutOfStock struct {
	OrderID    string   `json:"order_id"`
	Region     Region   `json:"region"`
	MissingSKU []string `json:"missing_skus"`
}

// OrderConfirmed is published by order once its stock is reserved.
type OrderConfirmed struct {
	OrderID    string   `json:"order_id"`
	Region     Region   `json:"region"`
	Customer   Customer `json:"customer"`
	TotalCents int64    `json:"total_cents"`
}

// OrderRejected is published by order when its stock could not be reserved.
type OrderRejected struct {
	OrderID  string   `json:"order_id"`
	Region   Region   `json:"region"`
	Customer Customer `json:"customer"`
	Reason   string   `json:"reason"`
}

// StockReleased is published by inventory after a cancelled order's stock was put back.
type StockReleased struct {
	OrderID string `json:"order_id"`
	Region  Region `json:"region"`
}

// StockQuery asks inventory for the stock level of one SKU (request/reply).
type StockQuery struct {
	SKU string `json:"sku"`
}

// StockLevel answers a StockQuery. Found is false for an unknown SKU. Invalid, when set,
// says why the query could not be answered (it broke a rule, e.g. its SKU holds a control
// character): the requester gets an answer at once instead of waiting out its timeout.
type StockLevel struct {
	SKU       string `json:"sku"`
	Available int    `json:"available"`
	Found     bool   `json:"found"`
	Invalid   string `json:"invalid,omitempty"`
}

// Validate checks the query names a valid SKU (CheckSKU).
func (q StockQuery) Validate() error { return CheckSKU("sku", q.SKU) }

// requireOrder is the check every order outcome needs: which order, and where it ships.
func requireOrder(orderID string, region Region) error {
	switch {
	case orderID == "":
		return fmt.Errorf("%w: order_id is empty", ErrMalformed)
	case !region.Valid():
		return fmt.Errorf("%w: region %q is unknown", ErrMalformed, region)
	}
	return nil
}

// Validate checks what every consumer relies on.
func (e StockReserved) Validate() error { return requireOrder(e.OrderID, e.Region) }

// Validate checks what every consumer relies on.
func (e StockOutOfStock) Validate() error { return requireOrder(e.OrderID, e.Region) }

// Validate checks what every consumer relies on.
func (e StockReleased) Validate() error { return requireOrder(e.OrderID, e.Region) }

// Validate checks what every consumer relies on.
func (e OrderConfirmed) Validate() error { return requireOrder(e.OrderID, e.Region) }

// Validate checks what every consumer relies on.
func (e OrderRejected) Validate() error { return requireOrder(e.OrderID, e.Region) }
