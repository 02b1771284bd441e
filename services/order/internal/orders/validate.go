package orders

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/warrenhq/warren/shared/events"
)

// Limits of a PlaceRequest.
const (
	maxNameLen  = 100
	maxEmailLen = 254 // RFC 5321's limit on a forward path
	minPhoneLen = 6
	maxPhoneLen = 20
	maxItems    = 50
	maxSKULen   = 64
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
// order, as a *ValidationError.
func (r PlaceRequest) Validate() error {
	c := r.Customer
	if n := utf8.RuneCountInString(strings.TrimSpace(c.Name)); n == 0 || n > maxNameLen {
		return invalid("customer.name", "must be 1 to %d characters", maxNameLen)
	}
	if err := validateEmail(c.Email); err != nil {
		return err
	}
	if err := validatePhone(c.Phone); err != nil {
		return err
	}
	if !r.Region.Valid() {
		return invalid("region", "must be one of %v", events.Regions)
	}
	if len(r.Items) == 0 || len(r.Items) > maxItems {
		return invalid("items", "must hold 1 to %d items", maxItems)
	}
	seen := make(map[string]bool, len(r.Items))
	for i, it := range r.Items {
		switch {
		case it.SKU == "" || len(it.SKU) > maxSKULen:
			return invalid(fmt.Sprintf("items[%d].sku", i), "must be 1 to %d characters", maxSKULen)
		case seen[it.SKU]:
			// One line per SKU keeps reservations and prices unambiguous.
			return invalid(fmt.Sprintf("items[%d].sku", i), "%q is listed twice; add the quantities up", it.SKU)
		case it.Quantity < 1 || it.Quantity > maxQuantity:
			return invalid(fmt.Sprintf("items[%d].quantity", i), "must be 1 to %d", maxQuantity)
		}
		seen[it.SKU] = true
	}
	return nil
}

// validateEmail accepts a bare address only: a display name ("Bob <bob@example.com>") is
// valid RFC 5322 but would end up in a To header as something else than the customer typed.
func validateEmail(email string) error {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || len(email) > maxEmailLen {
		return invalid("customer.email", "must be an email address such as name@example.com")
	}
	return nil
}

// validatePhone accepts what people write phone numbers with: digits, spaces, "+", "(",
// ")" and "-", e.g. "+44 20 7946 0958". It needs some digits, so "((--))" is refused.
func validatePhone(phone string) error {
	digits := 0
	for _, r := range phone {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune(" +()-", r):
		default:
			return invalid("customer.phone", "may hold only digits, spaces and + ( ) -")
		}
	}
	if len(phone) < minPhoneLen || len(phone) > maxPhoneLen || digits < minPhoneLen {
		return invalid("customer.phone", "must be %d to %d characters with at least %d digits", minPhoneLen, maxPhoneLen, minPhoneLen)
	}
	return nil
}
