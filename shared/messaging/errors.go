package messaging

import "errors"

// ErrPermanent marks a failure that retrying cannot fix: a malformed payload, an unknown
// message type, a request that breaks a business rule. DeadLetter sends such a message to
// its dead-letter queue at once; any other error is retried with backoff first.
var ErrPermanent = errors.New("permanent failure")

// ErrUnknownType is returned by a Dispatcher for a message type it has no handler for.
var ErrUnknownType = errors.New("unknown message type")

// ErrNoMessageID is returned by a Dispatcher for a message without a message id: its
// consumer could not tell a redelivery from a new message, so it must not process it.
var ErrNoMessageID = errors.New("message has no message id")

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() []error { return []error{e.err, ErrPermanent} }

// IsPermanent reports whether err must not be retried.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// ErrUnavailable marks a failure caused by a dependency that is down (a database, a mail
// server, the broker itself), not by the message: the same message will succeed once the
// dependency answers again, so it must never be dead-lettered for it. The consumer holds
// such a message and takes no new ones until a retry of it succeeds (see NewRouter).
var ErrUnavailable = errors.New("dependency unavailable")

// Unavailable wraps err so that errors.Is(err, ErrUnavailable) holds and
// UnavailableDependency names dependency ("postgres", "smtp"), which readiness and logs
// report.
func Unavailable(dependency string, err error) error {
	if err == nil {
		return nil
	}
	return &unavailableError{dependency: dependency, err: err}
}

type unavailableError struct {
	dependency string
	err        error
}

func (e *unavailableError) Error() string   { return e.err.Error() }
func (e *unavailableError) Unwrap() []error { return []error{e.err, ErrUnavailable} }

// UnavailableDependency returns the dependency named by the Unavailable that err wraps.
func UnavailableDependency(err error) (dependency string, ok bool) {
	var u *unavailableError
	if errors.As(err, &u) {
		return u.dependency, true
	}
	return "", false
}
