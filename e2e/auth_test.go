package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/warrenhq/warren/shared/events"
)

// Nobody gets in anonymously: every API answers a request without a token 401 with a JSON
// body, and a customer's token opens no staff route (403).
func TestAnonymousAndWrongRoleAreRefused(t *testing.T) {
	s := system(t)
	routes := []struct {
		name, method, url string
	}{
		{"place an order", http.MethodPost, s.Order.URL() + "/orders"},
		{"read an order", http.MethodGet, s.Order.URL() + "/orders/" + url.PathEscape("00000000-0000-0000-0000-000000000000")},
		{"products", http.MethodGet, s.Order.URL() + "/products"},
		{"set stock", http.MethodPut, s.Inventory.URL() + "/stock/carrot-seeds"},
		{"texts", http.MethodGet, s.SMS.URL() + "/messages"},
		{"mails", http.MethodGet, s.Email[0].URL() + "/emails"},
		{"stats", http.MethodGet, s.Analytics.URL() + "/stats"},
	}
	for _, r := range routes {
		refusedWith(t, r.name+" without a token", Call(t.Context(), r.method, r.url, nil, map[string]int{"available": 1}, http.StatusOK, nil), http.StatusUnauthorized)
	}
	alice := s.Order.Token()
	for _, r := range routes[3:] {
		refusedWith(t, r.name+" as the customer alice", Call(t.Context(), r.method, r.url, Bearer(alice), map[string]int{"available": 1}, http.StatusOK, nil), http.StatusForbidden)
	}
}

// A customer reads and cancels their own orders only: to anyone else an order answers
// exactly as one that does not exist.
func TestAnotherCustomersOrderIsNotFound(t *testing.T) {
	s := system(t)
	bob, err := s.Identity.Token(t.Context(), Bob)
	if err != nil {
		t.Fatal(err)
	}
	id := s.Order.Place(t, OrderRequest{Customer: customer(t, 1), Region: events.RegionEurope,
		Items: []Line{{SKU: "carrot-seeds", Quantity: 1}}}, nil)
	asBob := s.Order.As(bob)
	var missing *StatusError
	notFound := asBob.call(t.Context(), http.MethodGet, "/orders/00000000-0000-0000-0000-000000000000", nil, nil, http.StatusOK, nil)
	if !errors.As(notFound, &missing) || missing.Status != http.StatusNotFound {
		t.Fatalf("GET of an order that does not exist: %v, want 404", notFound)
	}
	for name, err := range map[string]error{
		"read":   asBob.call(t.Context(), http.MethodGet, "/orders/"+id, nil, nil, http.StatusOK, nil),
		"cancel": asBob.call(t.Context(), http.MethodPost, "/orders/"+id+"/cancel", nil, nil, http.StatusOK, nil),
	} {
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusNotFound || se.Body != missing.Body {
			t.Errorf("bob's %s of alice's order %s: %v; want 404 with the body of a missing order (%s)", name, id, err, missing.Body)
		}
	}
	if o := s.Order.Settled(t, id); o.Status != StatusConfirmed {
		t.Errorf("alice's order %s is %s (%s) after bob's attempts, want confirmed", id, o.Status, o.Reason)
	}
}

// refusedWith checks that err is an answer with status and a JSON error body.
func refusedWith(t *testing.T, what string, err error, status int) {
	t.Helper()
	var se *StatusError
	var body struct {
		Error string `json:"error"`
	}
	if !errors.As(err, &se) || se.Status != status || json.Unmarshal([]byte(se.Body), &body) != nil || body.Error == "" {
		t.Errorf("%s: %v; want %d with a JSON error body", what, err, status)
	}
}
