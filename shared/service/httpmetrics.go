package service

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/felixge/httpsnoop"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// RouteUnmatched is the route label of a request no route matched: a 404 or 405 of the
// mux, and a request refused before routing (a missing or invalid bearer token).
const RouteUnmatched = "unmatched"

// methodOther is the method label of a request whose method is not a standard one.
const methodOther = "other"

// httpMetrics are the API server's Prometheus metrics, labelled by route, method and code.
//
// Every label is bounded: the route is the pattern the mux matched (the service's own
// code names them) or RouteUnmatched, never the path; the method is a standard one or
// "other" (a client may send any token as a method, and a pattern without a method
// matches them all); the code is one the handlers wrote.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newHTTPMetrics registers the HTTP metrics with reg, or returns those registered already
// (a second API server on one registry shares them).
func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	return &httpMetrics{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warren_http_requests_total",
			Help: `API requests answered, by route (the mux pattern, e.g. "POST /orders", or "unmatched"), method and status code.`,
		}, []string{"route", "method", "code"})),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warren_http_request_duration_seconds",
			Help:    "Time from a request's arrival at the API handler to the handler's return, by route and method. Exemplars carry the trace_id.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"})),
	}
}

// register registers c with reg, or returns the equal collector registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a programming error: another metric of that name and other labels
	}
	return c
}

// middleware counts and times each request. It must sit inside the tracing handler, to
// find the request's span for the exemplar, and reads the matched route from the request
// after next returns: the mux sets r.Pattern on the request it is given (this one, as
// nothing between here and the mux replaces the request without copying the pattern back;
// see auth.Middleware).
func (m *httpMetrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// The first final status written is the request's: net/http ignores a later
		// WriteHeader, and a Write without one sends 200. 1xx are interim answers.
		code, written := http.StatusOK, false
		w = httpsnoop.Wrap(w, httpsnoop.Hooks{
			WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
				return func(c int) {
					if !written && c >= 200 {
						code, written = c, true
					}
					next(c)
				}
			},
			Write: func(next httpsnoop.WriteFunc) httpsnoop.WriteFunc {
				return func(b []byte) (int, error) {
					written = true
					return next(b)
				}
			},
		})
		next.ServeHTTP(w, r)
		elapsed := time.Since(start).Seconds()

		route := r.Pattern
		if route == "" {
			route = RouteUnmatched
		}
		method := methodLabel(r.Method)
		exemplar := traceExemplar(r)
		counter := m.requests.WithLabelValues(route, method, strconv.Itoa(code))
		observer := m.duration.WithLabelValues(route, method)
		if exemplar == nil {
			counter.Inc()
			observer.Observe(elapsed)
			return
		}
		counter.(prometheus.ExemplarAdder).AddWithExemplar(1, exemplar)
		observer.(prometheus.ExemplarObserver).ObserveWithExemplar(elapsed, exemplar)
	})
}

// traceExemplar is the exemplar of r: its trace id, when its trace is sampled (an
// unsampled trace is stored nowhere, so its id would lead nowhere); nil otherwise.
func traceExemplar(r *http.Request) prometheus.Labels {
	sc := trace.SpanContextFromContext(r.Context())
	if !sc.IsValid() || !sc.IsSampled() {
		return nil
	}
	return prometheus.Labels{"trace_id": sc.TraceID().String()}
}

// methodLabel maps a request method onto the bounded set of label values.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return methodOther
}
