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
