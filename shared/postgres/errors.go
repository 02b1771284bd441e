package postgres

import (
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsUnavailable reports whether err means the database could not be reached or went away
// (a restart, a failover, a network cut): the work should be tried again once it is back,
// for as long as an outage usually lasts, rather than given up on after a few quick retries.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var connect *pgconn.ConnectError
	var netErr net.Error
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &connect), errors.As(err, &netErr),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	case errors.As(err, &pgErr):
		// Class 08: connection exception; 57P01-03: the server is shutting down, crashed or
		// is starting; 53300: too many connections.
		return strings.HasPrefix(pgErr.Code, "08") ||
			pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" || pgErr.Code == "53300"
	}
	return pgconn.SafeToRetry(err)
}

// IsDataError reports whether err is the database refusing the data itself (SQLSTATE class
// 22, data exception, e.g. a NUL byte in text): the same message will fail the same way
// every time, so it must not be retried.
func IsDataError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22")
}

// IsPermanent reports whether err is a failure no retry can fix: the database refusing the
// data (IsDataError), or the ledger refusing a message older than its horizon
// (ErrBeyondHorizon). Consumers give it to their router so such messages are
// dead-lettered at once.
func IsPermanent(err error) bool {
	return IsDataError(err) || errors.Is(err, ErrBeyondHorizon)
}
