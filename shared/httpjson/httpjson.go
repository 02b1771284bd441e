// Package httpjson writes the JSON answers of Warren's HTTP APIs: a value with a status, and
// the one error body every service and middleware answers with. It imports nothing of
// Warren, so that any package (shared/service, shared/auth) can answer the same way.
package httpjson

import (
	"encoding/json"
	"net/http"
)

// Write writes v as a JSON response with the given status.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrorBody is the JSON body of every error response: a message and, for validation
// errors, the offending field.
type ErrorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// WriteError writes an ErrorBody.
func WriteError(w http.ResponseWriter, status int, field, msg string) {
	Write(w, status, ErrorBody{Error: msg, Field: field})
}
