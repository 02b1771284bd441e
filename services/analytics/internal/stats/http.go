package stats

import (
	"log/slog"
	"net/http"

	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/service"
)

// Routes registers the analytics service's HTTP API on mux:
//
//	GET /stats  the running totals (see Stats); role staff
//
// Every route needs a valid bearer token (auth.Middleware wraps the mux).
func Routes(mux *http.ServeMux, store *Store, logger *slog.Logger) {
	mux.Handle("GET /stats", auth.Require(auth.RoleStaff, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := store.Stats(r.Context())
		if err != nil {
			logger.ErrorContext(r.Context(), "stats", "error", err)
			service.WriteError(w, http.StatusInternalServerError, "", "internal error")
			return
		}
		service.WriteJSON(w, http.StatusOK, st)
	})))
}
