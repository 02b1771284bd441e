package mailing

import (
	"log/slog"
	"net/http"

	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/service"
)

// Routes registers the email service's HTTP API on mux:
//
//	GET /emails?order_id=  the mails sent (for one order when order_id is given), oldest
//	                       first, at most the newest 100; role staff
//
// Every route needs a valid bearer token (auth.Middleware wraps the mux).
func Routes(mux *http.ServeMux, store *Store, logger *slog.Logger) {
	mux.Handle("GET /emails", auth.Require(auth.RoleStaff, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent, err := store.List(r.Context(), r.URL.Query().Get("order_id"))
		if err != nil {
			logger.ErrorContext(r.Context(), "list emails", "error", err)
			service.WriteError(w, http.StatusInternalServerError, "", "internal error")
			return
		}
		service.WriteJSON(w, http.StatusOK, map[string]any{"emails": sent})
	})))
}
