package orders

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"unicode/utf8"
)

// FuzzPlaceRequest feeds arbitrary bodies to the POST /orders decoder and validation. Any
// body must end in a *ValidationError (400) or a *http.MaxBytesError (413), never a panic
// or another error (500); and a body that passes must satisfy every rule a consumer of
// OrderPlaced relies on. Seeds are in testdata/fuzz/FuzzPlaceRequest; `make fuzz` runs it.
func FuzzPlaceRequest(f *testing.F) {
	f.Add([]byte(`{"customer":{"name":"Ada","email":"ada@example.com","phone":"+44 20 7946 0958"},"region":"europe","items":[{"sku":"carrot-seeds","quantity":2}]}`))
	f.Add([]byte(`{"customer":{},"region":"mars","items":[]}`))
	f.Add([]byte(`{"items":[{"sku":"a","quantity":-1}]} {}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/orders", bytes.NewReader(body))
		var req PlaceRequest
		err := decodeJSON(httptest.NewRecorder(), r, &req)
		if err == nil {
			err = req.Validate()
		}
		var invalid *ValidationError
		var tooBig *http.MaxBytesError
		if err != nil {
			if !errors.As(err, &invalid) && !errors.As(err, &tooBig) {
				t.Fatalf("%q: error %T (%v) would be a 500", body, err, err)
			}
			return
		}
		if !req.Region.Valid() || len(req.Items) == 0 || len(req.Items) > 50 {
			t.Fatalf("accepted region %q with %d items", req.Region, len(req.Items))
		}
		for _, it := range req.Items {
			if it.SKU == "" || it.Quantity < 1 || it.Quantity > 1000 || !utf8.ValidString(it.SKU) {
				t.Fatalf("accepted item %+v", it)
			}
		}
		if req.Customer.Email == "" || req.Customer.Phone == "" || req.Customer.Name == "" {
			t.Fatalf("accepted customer %+v", req.Customer)
		}
	})
}
