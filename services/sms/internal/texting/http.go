package texting

import (
	"log/slog"
	"net/http"

	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/service"
)

// Routes registers the sms service's HTTP API on mux:
//
//	GET /messages?order_id=  the texts sent (for one order when order_id is given), oldest
//	                         first, at most the newest 100; role staff
//
// Every route needs a valid bearer token (auth.Middleware wraps the mux).
func Routes(mux *http.ServeMux, store *Store, logger *slog.Logger) {
	mux.Handle("GET /messages", auth.Require(auth.RoleStaff, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		texts, err := store.List(r.Context(), r.URL.Query().Get("order_id"))
		if err != nil {
			logger.ErrorContext(r.Context(), "list texts", "error", err)
			service.WriteError(w, http.StatusInternalServerError, "", "internal error")
			return
		}
		service.WriteJSON(w, http.StatusOK, map[string]any{"messages": texts})
	})))
}
