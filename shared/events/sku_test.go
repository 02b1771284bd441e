package events_test

import (
	"testing"

	"github.com/warrenhq/warren/shared/events"
)

func TestValidSKU(t *testing.T) {
	for sku, want := range map[string]bool{
		"carrot-seeds": true, "Äpfel-1": true, "": false, "nul\x00byte": false,
		"tab\tin": false, "\xff\xfe": false, string(make([]byte, 65)): false,
	} {
		if got := events.ValidSKU(sku); got != want {
			t.Errorf("ValidSKU(%q) = %v, want %v", sku, got, want)
		}
	}
}
