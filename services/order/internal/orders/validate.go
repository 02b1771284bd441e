package orders

import (
	"errors"
	"fmt"

	"github.com/warrenhq/warren/shared/events"
)

// Limits of a PlaceRequest beyond the contract's rules (events.Customer.Validate,
// events.CheckSKU): what one order may ask for.
const (
	maxItems    = 50
	maxQuantity = 1000
)

// ValidationError names the request field that is wrong and why. Field uses the JSON
// names and indexes, e.g. "items[0].quantity", so a client can point at it.
type ValidationError struct {
	Field   string
	Message string
}

// Error implements error.
func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// PlaceRequest is the body of POST /orders.
type PlaceRequest struct {
	Customer events.Customer `json:"customer"`
	Region   events.Region   `json:"region"`
	Items    []LineRequest   `json:"items"`
}

// LineRequest is one item of a PlaceRequest. Its price comes from the catalogue, never
// from the client.
type LineRequest struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// Validate checks everything that can be checked without the catalogue (whether each SKU
// exists is checked when the order is priced) and returns the first problem, in field
// order, as a *ValidationError. The customer and SKU rules are the contract's, the ones
// inventory, email and sms check when the order reaches them: an order accepted here can
// be reserved, mailed and texted.
func (r PlaceRequest) Validate() error {
	if err := r.Customer.Validate(); err != nil {
		return fromViolation(err)
	}
	if !r.Region.Valid() {
		return invalid("region", "must be one of %v", events.Regions)
	}
	if len(r.Items) == 0 || len(r.Items) > maxItems {
		return invalid("items", "must hold 1 to %d items", maxItems)
	}
	seen := make(map[string]bool, len(r.Items))
	for i, it := range r.Items {
		field := fmt.Sprintf("items[%d]", i)
		if err := events.CheckSKU(field+".sku", it.SKU); err != nil {
			return fromViolation(err)
		}
		switch {
		case seen[it.SKU]:
			// One line per SKU keeps reservations and prices unambiguous.
			return invalid(field+".sku", "%q is listed twice; add the quantities up", it.SKU)
		case it.Quantity < 1 || it.Quantity > maxQuantity:
			return invalid(field+".quantity", "must be 1 to %d", maxQuantity)
		}
		seen[it.SKU] = true
	}
	return nil
}

// validateSKU checks a SKU named in a URL path (GET /stock/{sku}) by the contract's rule,
// before inventory is asked about it.
func validateSKU(sku string) error { return fromViolation(events.CheckSKU("sku", sku)) }

// fromViolation turns the contract's *events.Violation into the API's *ValidationError.
func fromViolation(err error) error {
	var v *events.Violation
	if errors.As(err, &v) {
		return invalid(v.Field, "%s", v.Rule)
	}
	return err
}
