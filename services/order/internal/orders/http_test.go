package orders_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/warrenhq/warren/services/order/internal/orders"
	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/service"
)

// validRequest returns a fresh, valid POST /orders body as a map that a test case can break.
func validRequest() map[string]any {
	return map[string]any{
		"customer": map[string]any{"name": "Peter Rabbit", "email": "peter@example.com", "phone": "+44 20 7946 0958"},
		"region":   "europe",
		"items": []any{
			map[string]any{"sku": "carrot-seeds", "quantity": 3},
			map[string]any{"sku": "watering-can", "quantity": 1},
		},
	}
}

func customer(m map[string]any) map[string]any { return m["customer"].(map[string]any) }
func item(m map[string]any, i int) map[string]any {
	return m["items"].([]any)[i].(map[string]any)
}

// TestPlaceOrderRejectsBadInput posts broken requests through the real routes. Nothing
// behind the validation is wired (no database, no broker): every case must be refused
// before the order service touches either.
func TestPlaceOrderRejectsBadInput(t *testing.T) {
	manyItems := func(n int) []any {
		items := make([]any, n)
		for i := range items {
			items[i] = map[string]any{"sku": fmt.Sprintf("sku-%d", i), "quantity": 1}
		}
		return items
	}
	cases := []struct {
		name      string
		breakIt   func(m map[string]any)
		wantField string
	}{
		{"name missing", func(m map[string]any) { delete(customer(m), "name") }, "customer.name"},
		{"name blank", func(m map[string]any) { customer(m)["name"] = "   " }, "customer.name"},
		{"name too long", func(m map[string]any) { customer(m)["name"] = strings.Repeat("é", 101) }, "customer.name"},
		{"email missing", func(m map[string]any) { delete(customer(m), "email") }, "customer.email"},
		{"email not an address", func(m map[string]any) { customer(m)["email"] = "peter-at-example.com" }, "customer.email"},
		{"email with display name", func(m map[string]any) { customer(m)["email"] = "Peter <peter@example.com>" }, "customer.email"},
		{"phone missing", func(m map[string]any) { delete(customer(m), "phone") }, "customer.phone"},
		{"phone with letters", func(m map[string]any) { customer(m)["phone"] = "+44 20 RABBIT" }, "customer.phone"},
		{"phone too short", func(m map[string]any) { customer(m)["phone"] = "12345" }, "customer.phone"},
		{"phone too long", func(m map[string]any) { customer(m)["phone"] = "+44 20 7946 0958 1234" }, "customer.phone"},
		{"phone without digits", func(m map[string]any) { customer(m)["phone"] = "(--)  ++" }, "customer.phone"},
		{"name with CR LF (issue 10)", func(m map[string]any) { customer(m)["name"] = "Peter\r\nBcc: eve@example.com" }, "customer.name"},
		{"name with LF", func(m map[string]any) { customer(m)["name"] = "Peter\nRabbit" }, "customer.name"},
		{"name with NUL", func(m map[string]any) { customer(m)["name"] = "Peter\x00" }, "customer.name"},
		{"name with right-to-left override", func(m map[string]any) { customer(m)["name"] = "\u202etibbaR" }, "customer.name"},
		{"phone with a + inside", func(m map[string]any) { customer(m)["phone"] = "44+20 7946 0958" }, "customer.phone"},
		{"customer missing", func(m map[string]any) { delete(m, "customer") }, "customer.name"},
		{"region missing", func(m map[string]any) { delete(m, "region") }, "region"},
		{"region unknown", func(m map[string]any) { m["region"] = "mars" }, "region"},
		{"region wrong case", func(m map[string]any) { m["region"] = "Europe" }, "region"},
		{"items missing", func(m map[string]any) { delete(m, "items") }, "items"},
		{"items empty", func(m map[string]any) { m["items"] = []any{} }, "items"},
		{"too many items", func(m map[string]any) { m["items"] = manyItems(51) }, "items"},
		{"sku missing", func(m map[string]any) { delete(item(m, 0), "sku") }, "items[0].sku"},
		{"sku too long", func(m map[string]any) { item(m, 1)["sku"] = strings.Repeat("s", 65) }, "items[1].sku"},
		{"sku with NUL (issue 10)", func(m map[string]any) { item(m, 0)["sku"] = "carrot\x00seeds" }, "items[0].sku"},
		{"sku with tab", func(m map[string]any) { item(m, 1)["sku"] = "watering\tcan" }, "items[1].sku"},
		{"sku with DEL", func(m map[string]any) { item(m, 1)["sku"] = "can\x7f" }, "items[1].sku"},
		{"sku listed twice", func(m map[string]any) { item(m, 1)["sku"] = "carrot-seeds" }, "items[1].sku"},
		{"quantity missing", func(m map[string]any) { delete(item(m, 0), "quantity") }, "items[0].quantity"},
		{"quantity zero", func(m map[string]any) { item(m, 0)["quantity"] = 0 }, "items[0].quantity"},
		{"quantity negative", func(m map[string]any) { item(m, 1)["quantity"] = -2 }, "items[1].quantity"},
		{"quantity too large", func(m map[string]any) { item(m, 1)["quantity"] = 1001 }, "items[1].quantity"},
		{"quantity not a number", func(m map[string]any) { item(m, 0)["quantity"] = "three" }, "items[0].quantity"},
		{"quantity fractional", func(m map[string]any) { item(m, 0)["quantity"] = 1.5 }, "items[0].quantity"},
		{"unknown top-level field", func(m map[string]any) { m["discount"] = 100 }, "discount"},
		{"unknown item field", func(m map[string]any) { item(m, 0)["unit_price_cents"] = 1 }, "unit_price_cents"},
	}
	h := newHandler()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := validRequest()
			tc.breakIt(body)
			raw, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			got := post(t, h, string(raw))
			assertError(t, got, http.StatusBadRequest, tc.wantField)
		})
	}
}

func TestPlaceOrderRejectsMalformedBodies(t *testing.T) {
	valid, _ := json.Marshal(validRequest())
	cases := []struct {
		name, body string
		wantStatus int
	}{
		{"empty", "", http.StatusBadRequest},
		{"not JSON", "customer=peter", http.StatusBadRequest},
		{"truncated", string(valid[:len(valid)-5]), http.StatusBadRequest},
		{"array", "[]", http.StatusBadRequest},
		{"two objects", string(valid) + string(valid), http.StatusBadRequest},
		{"over 64 KiB", `{"customer":{"name":"` + strings.Repeat("a", 64<<10) + `"}}`, http.StatusRequestEntityTooLarge},
	}
	h := newHandler()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertError(t, post(t, h, tc.body), tc.wantStatus, "")
		})
	}
}

func TestValidateAcceptsValidRequests(t *testing.T) {
	base := orders.PlaceRequest{
		Customer: events.Customer{Name: "Peter Rabbit", Email: "peter@example.com", Phone: "+44 20 7946 0958"},
		Region:   events.RegionEurope,
		Items:    []orders.LineRequest{{SKU: "carrot-seeds", Quantity: 1}},
	}
	variants := map[string]func(r *orders.PlaceRequest){
		"as is":                            func(*orders.PlaceRequest) {},
		"phone with brackets":              func(r *orders.PlaceRequest) { r.Customer.Phone = "(212) 555-0100" },
		"phone digits only":                func(r *orders.PlaceRequest) { r.Customer.Phone = "123456" },
		"name with a quote (issue 10)":     func(r *orders.PlaceRequest) { r.Customer.Name = `Dwayne "The Rock` },
		"name with backslashes (issue 10)": func(r *orders.PlaceRequest) { r.Customer.Name = `Back\slash\` },
		"name beyond ASCII":                func(r *orders.PlaceRequest) { r.Customer.Name = "Zoë (née Smith), 李" },
		"phone with dots":                  func(r *orders.PlaceRequest) { r.Customer.Phone = "030.1234.5678" },
		"name of 100 runes":                func(r *orders.PlaceRequest) { r.Customer.Name = strings.Repeat("é", 100) },
		"every region":                     func(r *orders.PlaceRequest) { r.Region = events.RegionAmericas },
		"1000 of one item":                 func(r *orders.PlaceRequest) { r.Items[0].Quantity = 1000 },
		"50 items": func(r *orders.PlaceRequest) {
			r.Items = nil
			for i := range 50 {
				r.Items = append(r.Items, orders.LineRequest{SKU: fmt.Sprintf("sku-%d", i), Quantity: 1})
			}
		},
	}
	for name, change := range variants {
		t.Run(name, func(t *testing.T) {
			req := base
			req.Items = append([]orders.LineRequest(nil), base.Items...)
			change(&req)
			if err := req.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
		})
	}
}

// newHandler serves the routes with no database and no broker behind them, to a customer
// whose token auth.Middleware would have verified.
func newHandler() http.Handler {
	return newLimitedHandler(orders.Limits{OrdersPerSecond: 1e6, OrdersBurst: 1e6})
}

func newLimitedHandler(limits orders.Limits) http.Handler {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	orders.Routes(mux, orders.NewCommands(nil, nil, nil, 0, nil, logger), nil, nil, limits, logger)
	return asCustomer(mux)
}

// asCustomer serves h to the customer alice, as auth.Middleware does with her token.
func asCustomer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), auth.Principal{Subject: "alice", Roles: []string{auth.RoleCustomer}})))
	})
}

// GET /stock/{sku} checks the SKU before asking inventory: issue 10's GET /stock/%09 waited
// out the RPC timeout (504) and left the question in inventory's dead-letter queue. No
// stock client is wired, so a SKU that got past the check would fail the test.
func TestStockLevelRejectsInvalidSKU(t *testing.T) {
	h := newHandler()
	for _, path := range []string{"/stock/%09", "/stock/%00", "/stock/carrot%0Aseeds", "/stock/%7F", "/stock/" + strings.Repeat("s", 65)} {
		t.Run(path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			assertError(t, rec, http.StatusBadRequest, "sku")
		})
	}
}

// The limit applies before anything else: even a bad request uses up a token, so a flood
// of garbage cannot keep the service busy either.
func TestPlaceOrderIsRateLimited(t *testing.T) {
	h := newLimitedHandler(orders.Limits{OrdersPerSecond: 0.001, OrdersBurst: 2})
	assertError(t, post(t, h, `{}`), http.StatusBadRequest, "")
	assertError(t, post(t, h, `{}`), http.StatusBadRequest, "")
	rec := post(t, h, `{}`)
	assertError(t, rec, http.StatusTooManyRequests, "")
	if rec.Header().Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

func post(t *testing.T, h http.Handler, body string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(body)))
	return rec
}

func assertError(t *testing.T, rec *httptest.ResponseRecorder, wantStatus int, wantField string) {
	t.Helper()
	if rec.Code != wantStatus {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, wantStatus, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body service.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, rec.Body)
	}
	if body.Error == "" {
		t.Errorf("error body has no message: %s", rec.Body)
	}
	if wantField != "" && body.Field != wantField {
		t.Errorf("field = %q, want %q (error %q)", body.Field, wantField, body.Error)
	}
}
