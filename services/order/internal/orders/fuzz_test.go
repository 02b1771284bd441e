package orders

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/service"
)

// FuzzPlaceRequest feeds arbitrary bodies to POST /orders. A body the API refuses must be
// refused by the real handler with a 400 (or 413) and a JSON error body, never a 5xx or a
// panic. A body it accepts, decoded and validated by the same code the handler runs, must
// be an order every consumer can finish: inventory can reserve it (OrderPlaced validates),
// email can mail it (the To header email writes, from events.Customer.MailAddress, parses
// back with net/mail as the customer's name and address, and is the only header), and sms
// can text it (events.Customer.TextNumber). Seeds are in testdata/fuzz/FuzzPlaceRequest,
// among them the bodies of issue 10; `make fuzz` runs it.
func FuzzPlaceRequest(f *testing.F) {
	f.Add([]byte(`{"customer":{"name":"Ada","email":"ada@example.com","phone":"+44 20 7946 0958"},"region":"europe","items":[{"sku":"carrot-seeds","quantity":2}]}`))
	f.Add([]byte(`{"customer":{},"region":"mars","items":[]}`))
	f.Add([]byte(`{"items":[{"sku":"a","quantity":-1}]} {}`))
	// Issue 10: names that were accepted and never mailed, and a SKU that answered 500.
	f.Add([]byte(`{"customer":{"name":"Dwayne \"The Rock","email":"rock@example.com","phone":"+1 555 0100 000"},"region":"americas","items":[{"sku":"carrot-seeds","quantity":1}]}`))
	f.Add([]byte(`{"customer":{"name":"Back\\slash\\","email":"bs@example.com","phone":"+1 555 0100 000"},"region":"asia","items":[{"sku":"carrot-seeds","quantity":1}]}`))
	f.Add([]byte(`{"customer":{"name":"Ada\r\nBcc: eve@example.com","email":"ada@example.com","phone":"+44 20 7946 0958"},"region":"europe","items":[{"sku":"carrot-seeds","quantity":1}]}`))
	f.Add([]byte(`{"customer":{"name":"Ada","email":"ada@example.com","phone":"+44 20 7946 0958"},"region":"europe","items":[{"sku":"carrot\u0000seeds","quantity":1}]}`))

	logger := slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	// No database or broker behind the routes: a refused body never needs them.
	Routes(mux, NewCommands(nil, nil, nil, 0, nil, logger), nil, nil, Limits{OrdersPerSecond: 1e9, OrdersBurst: 1e9}, logger)
	// As auth.Middleware does for a customer's token.
	customer := auth.NewContext(context.Background(), auth.Principal{Subject: "alice", Roles: []string{auth.RoleCustomer}})

	f.Fuzz(func(t *testing.T, body []byte) {
		var req PlaceRequest
		err := decodeJSON(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/orders", bytes.NewReader(body)), &req)
		if err == nil {
			err = req.Validate()
		}
		if err != nil {
			assertRefused(t, mux, customer, body)
			return
		}
		assertFinishable(t, req)
	})
}

// assertRefused posts body to the real handler and checks the refusal is the client's to fix.
func assertRefused(t *testing.T, h http.Handler, ctx context.Context, body []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodPost, "/orders", bytes.NewReader(body)))
	var answer service.ErrorBody
	if (rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge) ||
		json.Unmarshal(rec.Body.Bytes(), &answer) != nil || answer.Error == "" {
		t.Fatalf("%q: refused with %d %s, want 400 or 413 with a JSON error", body, rec.Code, rec.Body)
	}
}

// skuInPath is the SKU that GET /stock/{sku} sees when a client asks for sku.
func skuInPath(sku string) string {
	var got string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stock/{sku}", func(_ http.ResponseWriter, r *http.Request) { got = r.PathValue("sku") })
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/stock/"+url.PathEscape(sku), nil))
	return got
}

// assertFinishable checks that inventory, email and sms can each do their part of req.
func assertFinishable(t *testing.T, req PlaceRequest) {
	t.Helper()
	placed := events.OrderPlaced{OrderID: "o-1", Customer: req.Customer, Region: req.Region}
	for _, it := range req.Items {
		placed.Items = append(placed.Items, events.Item{SKU: it.SKU, Quantity: it.Quantity})
	}
	if err := placed.Validate(); err != nil {
		t.Fatalf("accepted %+v, but inventory would dead-letter it: %v", req, err)
	}
	for _, it := range req.Items {
		// Checked apart from the rule, so that a rule too lax fails here: PostgreSQL text
		// refuses NUL, and GET /stock/{sku} must reach every SKU an order can hold.
		if strings.ContainsFunc(it.SKU, unicode.IsControl) {
			t.Fatalf("accepted SKU %q: it holds a control character", it.SKU)
		}
		if got := skuInPath(it.SKU); got != it.SKU {
			t.Fatalf("accepted SKU %q: GET /stock/{sku} reads it as %q", it.SKU, got)
		}
	}

	to, err := req.Customer.MailAddress()
	if err != nil {
		t.Fatalf("accepted customer %+v, but email cannot mail them: %v", req.Customer, err)
	}
	msg, err := mail.ReadMessage(strings.NewReader("To: " + to.String() + "\r\n\r\nbody"))
	if err != nil {
		t.Fatalf("accepted customer %+v: the mail does not parse: %v", req.Customer, err)
	}
	if len(msg.Header) != 1 {
		t.Fatalf("accepted customer %+v: the To header %q makes headers %v", req.Customer, to.String(), msg.Header)
	}
	back, err := msg.Header.AddressList("To")
	if err != nil || len(back) != 1 || back[0].Address != req.Customer.Email ||
		back[0].Name != strings.Join(strings.Fields(req.Customer.Name), " ") {
		t.Fatalf("accepted customer %+v: To %q reads back as %v, %v", req.Customer, to.String(), back, err)
	}
	if rest, _ := io.ReadAll(msg.Body); string(rest) != "body" {
		t.Fatalf("accepted customer %+v: the To header ate the body: %q", req.Customer, rest)
	}

	if _, err := req.Customer.TextNumber(); err != nil {
		t.Fatalf("accepted customer %+v, but sms cannot text them: %v", req.Customer, err)
	}
}
