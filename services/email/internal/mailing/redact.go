package mailing

import "regexp"

// RedactedAddress stands in the text of an error for every e-mail address it held.
const RedactedAddress = "[address]"

// addressInText matches what looks like an e-mail address inside free text: SMTP replies
// ("550 5.1.1 <bob@example.com>: user unknown") and go-mail's errors ("affected
// recipient(s): <bob@example.com>") name the recipient, and those errors end up in logs and
// in dead-letter reasons, which many more people read than the customers' records.
var addressInText = regexp.MustCompile(`[^\s<>"'(),;:\[\]]+@[^\s<>"'(),;:\[\]]+`)

// redacted is an error whose text has every e-mail address replaced by RedactedAddress.
// errors.Is and errors.As still see the error it wraps.
type redacted struct{ err error }

// redact wraps err so that its text names no e-mail address; nil stays nil. The order and
// the message id in the surrounding error say which mail it was.
func redact(err error) error {
	if err == nil {
		return nil
	}
	return redacted{err}
}

func (r redacted) Error() string {
	return addressInText.ReplaceAllString(r.err.Error(), RedactedAddress)
}

func (r redacted) Unwrap() error { return r.err }
