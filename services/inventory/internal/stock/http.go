package stock

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/warrenhq/warren/shared/service"
)

// maxBody bounds request bodies: a stock update is a few bytes.
const maxBody = 4 << 10

// Routes registers the inventory's HTTP API on mux:
//
//	GET /stock/{sku}  the available stock
//	PUT /stock/{sku}  {"available": n} sets it (restocking)
func Routes(mux *http.ServeMux, store *Store, logger *slog.Logger) {
	mux.HandleFunc("GET /stock/{sku}", func(w http.ResponseWriter, r *http.Request) {
		sku := r.PathValue("sku")
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
	mux.HandleFunc("PUT /stock/{sku}", func(w http.ResponseWriter, r *http.Request) {
		sku := r.PathValue("sku")
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
		if len(sku) == 0 || len(sku) > 64 {
			service.WriteError(w, http.StatusBadRequest, "sku", "sku must be 1 to 64 characters")
			return
		}
		if err := store.SetLevel(r.Context(), sku, *body.Available); err != nil {
			logger.ErrorContext(r.Context(), "set stock level", "sku", sku, "error", err)
			service.WriteError(w, http.StatusInternalServerError, "", "internal error")
			return
		}
		service.WriteJSON(w, http.StatusOK, map[string]any{"sku": sku, "available": *body.Available})
	})
}
