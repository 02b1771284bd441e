package events_test

import (
	"errors"
	"net/mail"
	"strings"
	"testing"

	"github.com/warrenhq/warren/shared/events"
)

func TestCheckSKU(t *testing.T) {
	for sku, want := range map[string]bool{
		"carrot-seeds": true, "Äpfel-1": true, "with space": true, strings.Repeat("s", 64): true,
		"": false, "nul\x00byte": false, "\x00": false, "\t": false, "tab\tin": false, "line\nfeed": false,
		"del\x7f": false, "nbsp\u00a0": false, "rtl\u202eoverride": false, "\xff\xfe": false,
		strings.Repeat("s", 65): false,
	} {
		err := events.CheckSKU("items[3].sku", sku)
		if got := err == nil; got != want {
			t.Errorf("CheckSKU(%q) = %v, want valid %v", sku, err, want)
		}
		assertViolation(t, err, "items[3].sku")
		if events.ValidSKU(sku) != want {
			t.Errorf("ValidSKU(%q) disagrees with CheckSKU", sku)
		}
	}
}

// TestMailAddressNames: every name that is accepted is mailed under exactly that name
// (spaces aside), and the To header it makes parses back to it.
func TestMailAddressNames(t *testing.T) {
	for _, tc := range []struct {
		name, mailedAs string
		ok             bool
	}{
		{"Ada Lovelace", "Ada Lovelace", true},
		{`Dwayne "The Rock`, `Dwayne "The Rock`, true},
		{`Dwayne "The Rock" Johnson`, `Dwayne "The Rock" Johnson`, true},
		{`Back\slash\`, `Back\slash\`, true},
		{`\`, `\`, true},
		{`"`, `"`, true},
		{"O'Brien, Jr. <admin@evil.example>", "O'Brien, Jr. <admin@evil.example>", true},
		{"=?utf-8?q?Mallory?=", "=?utf-8?q?Mallory?=", true},
		{"Zoë Ångström", "Zoë Ångström", true},
		{"Zoë (née Smith), \"Z\"", "Zoë (née Smith), \"Z\"", true},
		{"李小龍", "李小龍", true},
		{"می\u200cخواهم", "می\u200cخواهم", true},     // a zero-width non-joiner, as Persian writes
		{"👩\u200d👩\u200d👧", "👩\u200d👩\u200d👧", true}, // zero-width joiners
		{"  Ada   Lovelace ", "Ada Lovelace", true},
		{"Ada\u00a0Lovelace", "Ada Lovelace", true},
		{strings.Repeat("é", 100), strings.Repeat("é", 100), true},
		{strings.Repeat("a ", 50), strings.TrimSpace(strings.Repeat("a ", 50)), true},
		{"", "", true}, // no display name: a bare address (POST /orders requires a name)
		{strings.Repeat("é", 101), "", false},
		{"Ada\r\nBcc: victim@example.com", "", false},
		{"Ada\nLovelace", "", false},
		{"Ada\rLovelace", "", false},
		{"Ada\tLovelace", "", false},
		{"nul\x00", "", false},
		{"del\x7f", "", false},
		{"\u202eecilA", "", false}, // right-to-left override
		{"line\u2028sep", "", false},
		{"\xff", "", false},
	} {
		to, err := events.Customer{Name: tc.name, Email: "ada@example.com"}.MailAddress()
		if ok := err == nil; ok != tc.ok {
			t.Errorf("MailAddress(name %q) = %v, want valid %v", tc.name, err, tc.ok)
			continue
		}
		if err != nil {
			assertViolation(t, err, "customer.name")
			continue
		}
		if to.Name != tc.mailedAs || to.Address != "ada@example.com" {
			t.Errorf("MailAddress(name %q) = %q <%s>, want %q", tc.name, to.Name, to.Address, tc.mailedAs)
		}
		header := to.String()
		if strings.ContainsAny(header, "\r\n") {
			t.Errorf("header %q has a line break", header)
		}
		back, err := mail.ParseAddress(header)
		if err != nil || back.Name != tc.mailedAs || back.Address != "ada@example.com" {
			t.Errorf("header %q parses back as %v, %v; want %q", header, back, err, tc.mailedAs)
		}
	}
}

func TestMailAddressEmails(t *testing.T) {
	for email, ok := range map[string]bool{
		"ada@example.com": true, "a.b+tag@sub.example.org": true, "o'brien@example.ie": true,
		strings.Repeat("a", 64) + "@" + strings.Repeat("d", 189): true, // 254 bytes
		"": false, "ada": false, "ada@": false, "@example.com": false, "ada@@example.com": false,
		"ada-at-example.com": false, "Ada <ada@example.com>": false, "<ada@example.com>": false,
		" ada@example.com": false, "ada@example.com ": false, "ada@example.com\r\n": false,
		`"ada lovelace"@example.com`: false, "a..b@example.com": false, "ada@example.com, eve@example.com": false,
		strings.Repeat("a", 64) + "@" + strings.Repeat("d", 190): false, // 255 bytes
	} {
		to, err := events.Customer{Name: "Ada", Email: email}.MailAddress()
		if got := err == nil; got != ok {
			t.Errorf("MailAddress(email %q) = %v, want valid %v", email, err, ok)
			continue
		}
		if err != nil {
			assertViolation(t, err, "customer.email")
		} else if to.Address != email {
			t.Errorf("MailAddress(email %q) mails %q", email, to.Address)
		}
	}
}

func TestTextNumber(t *testing.T) {
	for _, tc := range []struct {
		phone, number string
	}{
		{"+44 20 7946 0958", "+442079460958"},
		{"(212) 555-0100", "2125550100"},
		{"030.1234.5678", "03012345678"},
		{"123456", "123456"},
		{"+123456789012345", "+123456789012345"}, // 15 digits, E.164's most
		{"", ""}, {"12345", ""}, {"+1234567890123456", ""}, {"+44 20 RABBIT", ""}, {"(--)  ++", ""},
		{"44+20 7946 0958", ""}, {"++44 20 7946 0958", ""}, {"+44 20 7946 0958 1234", ""},
		{"+44\t20 7946 0958", ""}, {"+44\n2079460958", ""}, {"٠١٢٣٤٥٦٧", ""}, // Arabic-Indic digits
		{"1 2 3 4 5 6 7 8 9 0 1", ""}, // 21 characters
	} {
		got, err := events.Customer{Phone: tc.phone}.TextNumber()
		if got != tc.number || (err == nil) != (tc.number != "") {
			t.Errorf("TextNumber(%q) = %q, %v; want %q", tc.phone, got, err, tc.number)
		}
		if err != nil {
			assertViolation(t, err, "customer.phone")
		}
	}
}

func TestCustomerValidate(t *testing.T) {
	good := events.Customer{Name: `Dwayne "The Rock`, Email: "rock@example.com", Phone: "+1 (555) 010-0000"}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", good, err)
	}
	for field, c := range map[string]events.Customer{
		"customer.name":  {Name: "   ", Email: good.Email, Phone: good.Phone},
		"customer.email": {Name: good.Name, Email: "rock", Phone: good.Phone},
		"customer.phone": {Name: good.Name, Email: good.Email, Phone: "rock"},
	} {
		assertViolation(t, c.Validate(), field)
	}
}

func TestOrderPlacedNamesTheBrokenItem(t *testing.T) {
	e := events.OrderPlaced{OrderID: "o-1", Region: events.RegionAsia,
		Items: []events.Item{{SKU: "a", Quantity: 1}, {SKU: "b\x00", Quantity: 1}}}
	assertViolation(t, e.Validate(), "items[1].sku")
	e.Items[1] = events.Item{SKU: "b", Quantity: 0}
	assertViolation(t, e.Validate(), "items[1].quantity")
}

// assertViolation checks that a non-nil err is a Violation of field, and malformed.
func assertViolation(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		return
	}
	var v *events.Violation
	if !errors.As(err, &v) || v.Field != field || v.Rule == "" {
		t.Errorf("error %v is not a Violation of %s", err, field)
	}
	if !errors.Is(err, events.ErrMalformed) {
		t.Errorf("error %v is not ErrMalformed: a consumer would retry it", err)
	}
}
