package stock

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/service"
)

// maxBody bounds request bodies: a stock update is a few bytes.
const maxBody = 4 << 10

// Routes registers the inventory's HTTP API on mux:
//
//	GET /stock/{sku}  the available stock; any valid token
//	PUT /stock/{sku}  {"available": n} sets it (restocking); role staff
//
// Every route needs a valid bearer token (auth.Middleware wraps the mux).
//
// A SKU that breaks the contract's rule (events.CheckSKU) is a 400 naming "sku": the
// database would refuse some (a NUL byte) with a 500, and keep others no order can name.
func Routes(mux *http.ServeMux, store *Store, logger *slog.Logger) {
	mux.HandleFunc("GET /stock/{sku}", func(w http.ResponseWriter, r *http.Request) {
		sku := r.PathValue("sku")
		if !validSKU(w, sku) {
			return
		}
		n, err := store.Level(r.Context(), sku)
		switch {
		case errors.Is(err, ErrUnknownSKU):
			service.WriteError(w, http.StatusNotFound, "sku", "unknown sku")
		case err != nil:
			logger.ErrorContext(r.Context(), "stock level", "sku", sku, "error", err)
			service.WriteError(w, http.StatusInternalServerError, "", "internal error")
		default:
			service.WriteJSON(w, http.StatusOK, map[string]any{"sku": sku, "available": n})
		}
	})
	mux.Handle("PUT /stock/{sku}", auth.Require(auth.RoleStaff, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sku := r.PathValue("sku")
		if !validSKU(w, sku) {
			return
		}
		var body struct {
			Available *int `json:"available"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			service.WriteError(w, http.StatusBadRequest, "", "invalid JSON body: "+err.Error())
			return
		}
		if body.Available == nil || *body.Available < 0 {
			service.WriteError(w, http.StatusBadRequest, "available", "available must be a number >= 0")
			return
		}
		if err := store.SetLevel(r.Context(), sku, *body.Available); err != nil {
			logger.ErrorContext(r.Context(), "set stock level", "sku", sku, "error", err)
			service.WriteError(w, http.StatusInternalServerError, "", "internal error")
			return
		}
		service.WriteJSON(w, http.StatusOK, map[string]any{"sku": sku, "available": *body.Available})
	})))
}

// validSKU reports whether sku passes the contract's rule, and answers 400 when it does not.
func validSKU(w http.ResponseWriter, sku string) bool {
	var v *events.Violation
	if err := events.CheckSKU("sku", sku); errors.As(err, &v) {
		service.WriteError(w, http.StatusBadRequest, v.Field, v.Rule)
		return false
	}
	return true
}
