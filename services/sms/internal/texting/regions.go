package texting

import (
	"slices"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

// StaleBindings returns the bindings of the sms queue to the confirmations of every region
// that is not in regions. Declaring a queue only ever adds bindings, so a broker that once
// served a wider setting keeps routing those regions' confirmations here until the service
// removes them at start-up.
func StaleBindings(regions []events.Region) []messaging.Binding {
	var stale []messaging.Binding
	for _, r := range events.Regions {
		if !slices.Contains(regions, r) {
			stale = append(stale, messaging.Binding{Exchange: events.ExchangeTopic, Key: events.OrderConfirmedKey(r)})
		}
	}
	return stale
}
