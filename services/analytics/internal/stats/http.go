package stats

import (
	"log/slog"
	"net/http"

	"github.com/warrenhq/warren/shared/service"
)

// Routes registers the analytics service's HTTP API on mux:
//
//	GET /stats  the running totals (see Stats)
func Routes(mux *http.ServeMux, store *Store, logger *slog.Logger) {
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		st, err := store.Stats(r.Context())
		if err != nil {
			logger.ErrorContext(r.Context(), "stats", "error", err)
			service.WriteError(w, http.StatusInternalServerError, "", "internal error")
			return
		}
		service.WriteJSON(w, http.StatusOK, st)
	})
}
