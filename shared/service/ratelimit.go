package service

import (
	"net/http"

	"golang.org/x/time/rate"
)

// RateLimit lets through at most perSecond requests a second on average, with bursts of
// up to burst, and answers the rest with 429 and a Retry-After header. The limit is per
// process: it protects this replica and its database, whoever the callers are; per caller,
// see RateLimitPerSubject.
func RateLimit(perSecond float64, burst int, next http.Handler) http.Handler {
	limiter := rate.NewLimiter(rate.Limit(perSecond), burst)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := limiter.Reserve()
		if delay := res.Delay(); delay > 0 {
			res.Cancel() // refused requests must not use up tokens
			writeTooMany(w, delay, "too many requests; retry later")
			return
		}
		next.ServeHTTP(w, r)
	})
}
