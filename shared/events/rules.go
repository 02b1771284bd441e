package events

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The rules below say what Warren can finish: an order POST /orders accepts must be one
// that inventory can reserve, email can mail and sms can text. The order service checks
// them at the edge (and answers 400 naming the field); each consumer checks again the ones
// it relies on, because an event can come from elsewhere, and dead-letters a breach as
// malformed. Both sides call the same functions, so they cannot drift apart.

// Limits of the rules.
const (
	// MaxNameLen is the most characters (runes) of a customer's name.
	MaxNameLen = 100
	// MaxEmailLen is RFC 5321's limit on a forward path.
	MaxEmailLen = 254
	// MinPhoneDigits and MaxPhoneDigits bound the digits of a phone number: E.164 numbers
	// have at most 15, and fewer than 6 is no one's number.
	MinPhoneDigits = 6
	MaxPhoneDigits = 15
	// MaxPhoneLen is the most bytes of a phone number as written, separators included.
	MaxPhoneLen = 20
	// MaxSKULen is the most bytes of a SKU.
	MaxSKULen = 64
)

// Violation is a value that breaks one of the rules. Field names the value as the JSON of
// a request or event does ("customer.name", "items[2].sku") so that a client can point at
// it; Rule says, in words a client can show, what the rule asks for.
//
// A Violation is an ErrMalformed: an event that breaks a rule can never be processed.
type Violation struct {
	Field string
	Rule  string
}

func violation(field, format string, args ...any) *Violation {
	return &Violation{Field: field, Rule: fmt.Sprintf(format, args...)}
}

// Error implements error.
func (v *Violation) Error() string { return v.Field + ": " + v.Rule }

// Unwrap makes errors.Is(v, ErrMalformed) hold, so consumers dead-letter a breach at once.
func (v *Violation) Unwrap() error { return ErrMalformed }

// CheckSKU checks that sku is 1 to MaxSKULen bytes of printable UTF-8: what every store of
// Warren's can keep (PostgreSQL, for one, refuses a NUL byte in text) and what a URL path
// and a log line carry unchanged. field names the SKU in a Violation.
func CheckSKU(field, sku string) error {
	if sku == "" || len(sku) > MaxSKULen || !utf8.ValidString(sku) || strings.IndexFunc(sku, notPrintable) >= 0 {
		return violation(field, "must be 1 to %d bytes of printable characters (no spaces other than ' ', no control characters)", MaxSKULen)
	}
	return nil
}

// ValidSKU reports whether sku passes CheckSKU.
func ValidSKU(sku string) bool { return CheckSKU("sku", sku) == nil }

func notPrintable(r rune) bool { return !unicode.IsPrint(r) }

// Validate checks every rule of a customer, as POST /orders requires them: a name, an
// address that can be mailed under that name (MailAddress), and a number that can be
// texted (TextNumber). The Violation names the field as "customer.name", "customer.email"
// or "customer.phone".
func (c Customer) Validate() error {
	if strings.TrimSpace(c.Name) == "" {
		return violation("customer.name", "must be 1 to %d characters, not only spaces", MaxNameLen)
	}
	if _, err := c.MailAddress(); err != nil {
		return err
	}
	_, err := c.TextNumber()
	return err
}

// MailAddress returns the recipient of a mail to c: the address, under the customer's
// name as its display name (none when the name is empty). Its String method is the
// To header, quoted or RFC 2047-encoded as RFC 5322 requires: `"Dwayne \"The Rock" <...>`
// for a name with a quote, `=?utf-8?q?...?= <...>` for one beyond ASCII. The email service
// builds its To header from it, and POST /orders accepts a customer only when it succeeds,
// so every accepted order can be mailed.
//
// The name is mailed with its runs of spaces made one space, and without leading and
// trailing ones: header folding cannot keep them, and they mean nothing in a name. It may
// hold any letters, marks, numbers, punctuation, symbols and spaces of Unicode, and the
// zero-width (non-)joiners some scripts need; no control characters (CR and LF would end
// the header), and no other invisible formatting characters (a right-to-left override
// would make a mail client show another name than the one sent).
//
// The email must be a bare address, "name@example.com", of at most MaxEmailLen bytes: a
// display name ("Bob <bob@example.com>") is valid RFC 5322 but the To header would then
// show something else than the customer's name.
func (c Customer) MailAddress() (*mail.Address, error) {
	if utf8.RuneCountInString(c.Name) > MaxNameLen || !utf8.ValidString(c.Name) {
		return nil, violation("customer.name", "must be 1 to %d characters", MaxNameLen)
	}
	if i := strings.IndexFunc(c.Name, notInName); i >= 0 {
		r, _ := utf8.DecodeRuneInString(c.Name[i:])
		return nil, violation("customer.name", "must not hold control or formatting characters such as %U", r)
	}
	parsed, err := mail.ParseAddress(c.Email)
	if err != nil || parsed.Address != c.Email || len(c.Email) > MaxEmailLen {
		return nil, violation("customer.email", "must be an email address such as name@example.com, at most %d bytes", MaxEmailLen)
	}
	to := &mail.Address{Name: strings.Join(strings.Fields(c.Name), " "), Address: c.Email}
	// The header must read back as what was meant. The checks above should make this
	// always hold; checking the composition itself keeps it so if net/mail changes.
	back, err := mail.ParseAddress(to.String())
	if err != nil || back.Name != to.Name || back.Address != to.Address {
		return nil, violation("customer.name", "cannot be written in a mail header together with this address")
	}
	return to, nil
}

// notInName reports a rune a name may not hold: anything but graphic characters (letters,
// marks, numbers, punctuation, symbols, spaces) and the zero-width non-joiner and joiner.
func notInName(r rune) bool {
	return !unicode.IsGraphic(r) && r != '\u200c' && r != '\u200d'
}

// TextNumber returns the customer's phone number as the sms service texts it: its digits,
// after a "+" when it was written with one ("+44 20 7946 0958" is "+442079460958").
//
// A number is written with digits, spaces, "(", ")", "-" and "." (a "+" only first), at
// most MaxPhoneLen bytes, and has MinPhoneDigits to MaxPhoneDigits digits.
func (c Customer) TextNumber() (string, error) {
	phone := c.Phone
	if len(phone) > MaxPhoneLen {
		return "", violation("customer.phone", "must be at most %d characters", MaxPhoneLen)
	}
	var number strings.Builder
	if rest, ok := strings.CutPrefix(phone, "+"); ok {
		number.WriteByte('+')
		phone = rest
	}
	digits := 0
	for _, r := range phone {
		switch {
		case r >= '0' && r <= '9':
			number.WriteRune(r)
			digits++
		case strings.ContainsRune(" ()-.", r):
		default:
			return "", violation("customer.phone", "may hold only digits, spaces and ( ) - ., and + first")
		}
	}
	if digits < MinPhoneDigits || digits > MaxPhoneDigits {
		return "", violation("customer.phone", "must have %d to %d digits", MinPhoneDigits, MaxPhoneDigits)
	}
	return number.String(), nil
}
