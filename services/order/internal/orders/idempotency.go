package orders

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warrenhq/warren/shared/postgres"
)

// HeaderIdempotencyKey is the request header that makes POST /orders safe to retry
// (draft-ietf-httpapi-idempotency-key-header): the same key with the same body places one
// order, however many times it is sent.
const HeaderIdempotencyKey = "Idempotency-Key"

// maxKeyLen bounds an idempotency key; a UUID, the usual choice, takes 36.
const maxKeyLen = 255

// ErrIdempotencyKeyReused is returned when an idempotency key comes back with a request
// other than the one it was first sent with: a client bug, answered 422.
var ErrIdempotencyKeyReused = errors.New("idempotency key already used for a different request")

// IdempotencyKey is a client's key for one POST /orders. The zero value means the request
// carried none: it is placed as a new order every time.
type IdempotencyKey struct {
	// Subject is who sent the key (the customer's token's sub): keys are unique per
	// subject, so two customers' keys never meet. Keys stored before the API authenticated
	// its callers have "", which no subject is.
	Subject string
	// Key is the header's value, unquoted.
	Key string
}

// ParseIdempotencyKey reads the Idempotency-Key header's value. The draft makes it a
// Structured Field string ("..." with \" and \\ escapes); the bare form most clients send
// (Idempotency-Key: 8e03978e-...) is accepted too, and names the same key. Either way the
// key is 1 to 255 printable ASCII characters; anything else is a *ValidationError naming
// the header. An absent header ("") is no key.
func ParseIdempotencyKey(value string) (string, error) {
	if value == "" {
		return "", nil
	}
	key := value
	if strings.HasPrefix(value, `"`) {
		var ok bool
		if key, ok = unquoteSFString(value); !ok {
			return "", invalid(HeaderIdempotencyKey, `must be a string such as "8e03978e-40d5-43e8-bc93-6894a57f9324"`)
		}
	}
	if len(key) == 0 || len(key) > maxKeyLen {
		return "", invalid(HeaderIdempotencyKey, "must be 1 to %d characters", maxKeyLen)
	}
	for i := range len(key) {
		if key[i] < 0x20 || key[i] > 0x7e {
			return "", invalid(HeaderIdempotencyKey, "may hold only printable ASCII characters")
		}
	}
	return key, nil
}

// unquoteSFString decodes an RFC 8941 sf-string: a quoted string whose only escapes are \"
// and \\.
func unquoteSFString(s string) (string, bool) {
	if len(s) < 2 || s[len(s)-1] != '"' {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s)-1 && (s[i+1] == '"' || s[i+1] == '\\'):
			i++
			c = s[i]
		case c == '\\' || c == '"':
			return "", false
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// requestHash is the sha256 of the canonical form of req: the decoded body encoded again,
// so that spacing and field order do not make a retry look like a different request. Only
// the hash is kept with the key, not a second copy of the customer's details.
func requestHash(req PlaceRequest) ([]byte, error) {
	canonical, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("request hash: %w", err)
	}
	sum := sha256.Sum256(canonical)
	return sum[:], nil
}

// KeyExpiry is the retention of the idempotency keys, for the service's postgres.Sweeper:
// a key is honoured for at least ttl, after which the same key places a new order.
func KeyExpiry(ttl time.Duration) postgres.Expiry {
	return postgres.Expiry{Table: "idempotency_keys", Column: "created_at", After: ttl}
}
