package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/warrenhq/warren/shared/httpjson"
	"github.com/warrenhq/warren/shared/postgres"
)

// Check is a readiness check: nil when the dependency it checks can be used.
type Check func(ctx context.Context) error

// OpsMux returns a mux with the operational endpoints every service has:
//
//	GET /healthz  200 while the process runs (liveness)
//	GET /readyz   200 when every check passes, else 503 with the failures (readiness)
//	GET /metrics  Prometheus metrics from reg, in the OpenMetrics format when the scraper
//	              asks for it (Prometheus does): the only format that carries exemplars
//
// They are served on a listener of their own (NewOpsServer, OPS_ADDR), never on the API's:
// probes and scrapes need no token, and metrics and readiness details are not for clients.
func OpsMux(reg *prometheus.Registry, checks map[string]Check) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		failed := map[string]string{}
		for name, check := range checks {
			if err := check(ctx); err != nil {
				failed[name] = err.Error()
			}
		}
		if len(failed) > 0 {
			WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failed": failed})
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true}))
	return mux
}

// NewOpsServer returns the server of the operational endpoints (OpsMux) on addr. It is not
// traced (probes and scrapes would drown the traces that matter) and has the API server's
// timeouts.
func NewOpsServer(addr string, reg *prometheus.Registry, checks map[string]Check) *http.Server {
	return withTimeouts(&http.Server{Addr: addr, Handler: OpsMux(reg, checks)})
}

// NewRegistry returns a Prometheus registry with the process-wide collectors: the Go
// runtime's, the process's, and the database round trips of postgres's pools.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	reg.MustRegister(postgres.Collectors()...)
	return reg
}

// ServerOption configures NewServer.
type ServerOption func(*serverOptions)

type serverOptions struct {
	metrics *httpMetrics
}

// WithMetrics has the server count and time every request in reg (the registry the ops
// listener serves): warren_http_requests_total{route,method,code} and
// warren_http_request_duration_seconds{route,method}, with the trace id as exemplar.
// Several servers may share one registry.
func WithMetrics(reg prometheus.Registerer) ServerOption {
	return func(o *serverOptions) { o.metrics = newHTTPMetrics(reg) }
}

// NewServer is the API's server: it wraps h with an OpenTelemetry server span per request
// (named after the matched route), the request's metrics (WithMetrics) and a deadline of
// requestTimeout per request (see Deadline), and has timeouts, so a slow client cannot
// hold a connection open either.
func NewServer(addr string, requestTimeout time.Duration, h http.Handler, opts ...ServerOption) *http.Server {
	var o serverOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.metrics != nil {
		// Inside the span, whose context gives the exemplar its trace id; the metrics
		// handler passes the request on as it is, so the span still sees the route.
		h = o.metrics.middleware(h)
	}
	return withTimeouts(&http.Server{
		Addr: addr,
		// The deadline goes outside the span's handler: a handler below that copies the
		// request (WithContext) would hide the mux's matched route from the span name.
		Handler: Deadline(requestTimeout, otelhttp.NewHandler(h, "http",
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
				if r.Pattern != "" {
					return r.Pattern
				}
				return r.Method
			}))),
	})
}

// withTimeouts sets srv's timeouts and header limit.
func withTimeouts(srv *http.Server) *http.Server {
	srv.ReadHeaderTimeout = 5 * time.Second
	srv.ReadTimeout = 15 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.IdleTimeout = 2 * time.Minute
	srv.MaxHeaderBytes = 64 << 10
	return srv
}

// Serve runs srv until ctx is cancelled, then shuts it down, letting requests in flight
// finish for up to timeout. It fails only when a request was still running at the end.
func Serve(ctx context.Context, srv *http.Server, timeout time.Duration, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", srv.Addr, err)
	}
	logger.Info("http listening", "addr", ln.Addr().String())
	var inFlight atomic.Int64
	next := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		next.ServeHTTP(w, r)
	})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Shutdown also waits up to 5 s for connections that were opened but never sent a
		// request (an HTTP client's spare dial, a load balancer's warm pool). They hold no
		// work: close them, and fail only if a request was cut off.
		_ = srv.Close()
		if n := inFlight.Load(); n > 0 || !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("http shutdown: %d requests still in flight: %w", n, err)
		}
		logger.Info("http shutdown: closed connections that never sent a request")
		return nil
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http serve: %w", err)
	}
	return nil
}

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

// ErrorBody is the JSON body of every error response: a message and, for validation
// errors, the offending field. It is defined in httpjson, which shared/auth shares.
type ErrorBody = httpjson.ErrorBody

// WriteError writes an ErrorBody.
func WriteError(w http.ResponseWriter, status int, field, msg string) {
	httpjson.WriteError(w, status, field, msg)
}
