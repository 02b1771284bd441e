package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/service"
)

// maxBody bounds request bodies: fifty items take about 3 KiB.
const maxBody = 64 << 10

// Routes registers the order service's HTTP API on mux:
//
//	POST /orders              place an order: 202 {"id","status"} and a Location header;
//	                          idempotent with an Idempotency-Key header (422 when the key
//	                          was used for another request)
//	GET  /orders/{id}         the order
//	POST /orders/{id}/cancel  cancel a pending or confirmed order: 200 with the order
//	GET  /products            the catalogue
//	GET  /stock/{sku}         inventory's stock level, asked over request/reply (400 for a
//	                          SKU that breaks events.CheckSKU)
//
// Every route needs a valid bearer token (auth.Middleware wraps the mux). The three order
// routes need the role customer, and a customer sees and cancels only the orders it
// placed: someone else's order is a 404 like a missing one, so ids cannot be probed.
//
// Errors are a service.ErrorBody; a validation error names the offending field.
//
// POST /orders is rate limited per replica and per customer, and a customer may hold only
// so many pending orders (see Limits): beyond, 429 with Retry-After.
func Routes(mux *http.ServeMux, commands *Commands, store *Store, stock *StockClient, limits Limits, logger *slog.Logger) {
	a := &api{commands: commands, store: store, stock: stock, logger: logger}
	mux.Handle("POST /orders", service.RateLimit(limits.OrdersPerSecond, limits.OrdersBurst,
		auth.Require(auth.RoleCustomer, service.RateLimitPerSubject(limits.PerCustomer, http.HandlerFunc(a.place)))))
	mux.Handle("GET /orders/{id}", auth.Require(auth.RoleCustomer, http.HandlerFunc(a.get)))
	mux.Handle("POST /orders/{id}/cancel", auth.Require(auth.RoleCustomer, http.HandlerFunc(a.cancel)))
	mux.HandleFunc("GET /products", a.products)
	mux.HandleFunc("GET /stock/{sku}", a.stockLevel)
}

// Limits bound what clients may ask of the service.
type Limits struct {
	// OrdersPerSecond is the sustained rate of POST /orders this replica accepts, and
	// OrdersBurst how many may come at once above it.
	OrdersPerSecond float64
	OrdersBurst     int
	// PerCustomer is the rate of POST /orders one customer may send to this replica.
	PerCustomer service.SubjectLimit
}

type api struct {
	commands *Commands
	store    *Store
	stock    *StockClient
	logger   *slog.Logger
}

func (a *api) place(w http.ResponseWriter, r *http.Request) {
	key, err := ParseIdempotencyKey(r.Header.Get(HeaderIdempotencyKey))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var req PlaceRequest
	if err := decodeJSON(w, r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	order, replayed, err := a.commands.Place(r.Context(), customer(r), req, IdempotencyKey{Key: key})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// 202: the order is taken, its outcome is decided later by inventory. A replay gets
	// the first answer again (with the order's status now), so a retry cannot tell.
	w.Header().Set("Location", "/orders/"+order.ID)
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	service.WriteJSON(w, http.StatusAccepted, map[string]string{"id": order.ID, "status": string(order.Status)})
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	order, err := a.store.Get(r.Context(), r.PathValue("id"), customer(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	service.WriteJSON(w, http.StatusOK, order)
}

func (a *api) cancel(w http.ResponseWriter, r *http.Request) {
	order, err := a.commands.Cancel(r.Context(), r.PathValue("id"), customer(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	service.WriteJSON(w, http.StatusOK, order)
}

// customer is the subject of the request's verified token. The order routes run behind
// auth.Require, so there is one; "" would match no order.
func customer(r *http.Request) string {
	p, _ := auth.FromContext(r.Context())
	return p.Subject
}

func (a *api) products(w http.ResponseWriter, r *http.Request) {
	products, err := a.store.Products(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	service.WriteJSON(w, http.StatusOK, products)
}

func (a *api) stockLevel(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	// Checked before asking: inventory would refuse the SKU too, but the client gets a 400
	// naming the field at once, and inventory no question it cannot answer.
	if err := validateSKU(sku); err != nil {
		a.fail(w, r, err)
		return
	}
	available, err := a.stock.Level(r.Context(), sku)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	service.WriteJSON(w, http.StatusOK, map[string]any{"sku": sku, "available": available})
}

// blockedRetryAfter is the Retry-After, in seconds, of a 503 for a broker that blocks
// publishes.
const blockedRetryAfter = 5

// openOrdersRetryAfter is the Retry-After, in seconds, of a 429 for a customer at the
// open-order quota: inventory settles a pending order in milliseconds when it runs, so a
// customer stays at the quota only while inventory is away or far behind.
const openOrdersRetryAfter = 10

// fail is the one place errors become HTTP responses; it logs what the client cannot fix.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var invalid *ValidationError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		service.WriteError(w, http.StatusRequestEntityTooLarge, "", fmt.Sprintf("the body is larger than %d bytes", tooBig.Limit))
	case errors.As(err, &invalid):
		service.WriteError(w, http.StatusBadRequest, invalid.Field, invalid.Message)
	case errors.Is(err, ErrNotFound):
		service.WriteError(w, http.StatusNotFound, "id", "order not found")
	case errors.Is(err, ErrUnknownSKU):
		service.WriteError(w, http.StatusNotFound, "sku", "unknown sku")
	case errors.Is(err, ErrIdempotencyKeyReused):
		service.WriteError(w, http.StatusUnprocessableEntity, HeaderIdempotencyKey, "was already used for a different request; use a new key for a new order")
	case errors.Is(err, ErrTooManyOpenOrders):
		a.logger.InfoContext(r.Context(), "order refused: open-order quota", "customer", customer(r), "error", err)
		w.Header().Set("Retry-After", strconv.Itoa(openOrdersRetryAfter))
		service.WriteError(w, http.StatusTooManyRequests, "", "you have as many pending orders as allowed; place more once some are confirmed, rejected or cancelled")
	case errors.Is(err, ErrNotCancellable):
		service.WriteError(w, http.StatusConflict, "", err.Error())
	case errors.Is(err, messaging.ErrRequestTimeout):
		a.logger.WarnContext(r.Context(), "dependency timed out", "method", r.Method, "path", r.URL.Path, "error", err)
		service.WriteError(w, http.StatusGatewayTimeout, "", "inventory did not answer in time")
	case errors.Is(err, messaging.ErrBlocked):
		// A broker alarm (memory, disk) clears once the broker has caught up: worth
		// retrying soon, unlike a bug.
		a.logger.WarnContext(r.Context(), "broker is blocking publishes", "method", r.Method, "path", r.URL.Path, "error", err)
		w.Header().Set("Retry-After", strconv.Itoa(blockedRetryAfter))
		service.WriteError(w, http.StatusServiceUnavailable, "", "the message broker is refusing new messages for now; retry later")
	case errors.Is(err, ErrUnavailable):
		a.logger.WarnContext(r.Context(), "dependency unavailable", "method", r.Method, "path", r.URL.Path, "error", err)
		service.WriteError(w, http.StatusServiceUnavailable, "", "inventory is unavailable")
	case errors.Is(err, context.DeadlineExceeded):
		// REQUEST_TIMEOUT (service.Deadline) ran out, e.g. waiting for a locked row.
		a.logger.WarnContext(r.Context(), "request deadline exceeded", "method", r.Method, "path", r.URL.Path, "error", err)
		service.WriteDeadlineExceeded(w)
	default:
		a.logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		service.WriteError(w, http.StatusInternalServerError, "", "internal error")
	}
}

// decodeJSON decodes the body into v: at most maxBody bytes, exactly one JSON value, no
// unknown fields (a misspelt optional field would otherwise be silently ignored). Errors
// are a *ValidationError, or an *http.MaxBytesError for a body that is too large.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return invalid("", "the body must hold a single JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var tooBig *http.MaxBytesError
	var wrongType *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return err
	case errors.As(err, &wrongType):
		return invalid(fieldPath(wrongType.Field), "must be a JSON %s", jsonKind(wrongType.Type.Kind().String()))
	case errors.Is(err, io.EOF):
		return invalid("", "the body is empty; send a JSON object")
	}
	// encoding/json has no error type for an unknown field, only this message.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return invalid(strings.Trim(name, `"`), "is not a known field")
	}
	return invalid("", "invalid JSON: %v", err)
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"), strings.HasPrefix(kind, "float"):
		return "number"
	case kind == "slice":
		return "array"
	case kind == "struct", kind == "map":
		return "object"
	}
	return kind
}

// fieldPath writes encoding/json's path of a field ("items.0.quantity" since Go 1.27) the
// way the contract's rules name fields ("items[0].quantity").
func fieldPath(jsonPath string) string {
	var b strings.Builder
	for i, part := range strings.Split(jsonPath, ".") {
		switch _, err := strconv.Atoi(part); {
		case err == nil && i > 0:
			b.WriteString("[" + part + "]")
		case i > 0:
			b.WriteString("." + part)
		default:
			b.WriteString(part)
		}
	}
	return b.String()
}
