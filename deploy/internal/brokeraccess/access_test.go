package brokeraccess_test

import (
	"regexp"
	"slices"
	"testing"

	"github.com/warrenhq/warren/deploy/internal/brokeraccess"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

func TestPatternMatchesExactlyTheNames(t *testing.T) {
	re := regexp.MustCompile(brokeraccess.Pattern([]string{"order.events", "#", "order.*.confirmed"}))
	for _, name := range []string{"order.events", "#", "order.*.confirmed"} {
		if !re.MatchString(name) {
			t.Errorf("%q does not match", name)
		}
	}
	for _, name := range []string{"order.events.sms", "orderXevents", "order.europe.confirmed", "", "x#"} {
		if re.MatchString(name) {
			t.Errorf("%q matches", name)
		}
	}
	if none := regexp.MustCompile(brokeraccess.Pattern(nil)); none.MatchString("anything") {
		t.Error("the empty pattern matches something")
	}
}

// TestNoServiceReachesAnothersQueues checks the rendered patterns, not the name lists:
// no service may read, bind or declare another service's queue, dead-letter exchange or
// dead-letter queue, publish to an exchange it does not use, or touch the shared sinks.
func TestNoServiceReachesAnothersQueues(t *testing.T) {
	topology := events.Topology(events.Regions)
	owner := map[string]string{}
	for _, s := range brokeraccess.Services() {
		for _, q := range s.Consumes {
			owner[q], owner[messaging.DeadLetterQueueName(q)], owner[messaging.DeadLetterExchangeName(q)] = s.Name, s.Name, s.Name
		}
	}
	for _, sink := range []string{messaging.UnroutableExchange, messaging.UnroutableQueue, messaging.ArchiveExchange, messaging.ArchiveQueue} {
		owner[sink] = "" // nobody's
	}
	for _, s := range brokeraccess.Services() {
		a, err := brokeraccess.For(topology, s)
		if err != nil {
			t.Fatal(err)
		}
		p := a.Permissions()
		rights := map[string]*regexp.Regexp{
			"configure": regexp.MustCompile(p.Configure),
			"write":     regexp.MustCompile(p.Write),
			"read":      regexp.MustCompile(p.Read),
		}
		for queue, o := range owner {
			for right, re := range rights {
				if got, want := re.MatchString(queue), o == s.Name; got != want {
					t.Errorf("%s %s on %s: %v, want %v", s.Name, right, queue, got, want)
				}
			}
		}
		var publishes []string
		for _, pub := range s.Publishes {
			publishes = append(publishes, pub.Exchange)
		}
		for _, e := range topology.Exchanges {
			if got, want := rights["write"].MatchString(e.Name), slices.Contains(publishes, e.Name); got != want {
				t.Errorf("%s write on exchange %s: %v, want %v", s.Name, e.Name, got, want)
			}
		}
		if got := rights["write"].MatchString(brokeraccess.DefaultExchange); got != s.Replies {
			t.Errorf("%s write on the default exchange: %v, want %v", s.Name, got, s.Replies)
		}
	}
}

func TestForRejectsWhatTheTopologyLacks(t *testing.T) {
	topology := events.Topology(events.Regions)
	bad := []brokeraccess.Service{
		{Name: "x", Consumes: []string{"no.such.queue"}},
		{Name: "x", Publishes: []brokeraccess.Publication{{Exchange: "no.such.exchange"}}},
		{Name: "x", Publishes: []brokeraccess.Publication{{Exchange: events.ExchangeTopic}}}, // topic without keys
	}
	for _, s := range bad {
		if _, err := brokeraccess.For(topology, s); err == nil {
			t.Errorf("For(%+v) succeeded", s)
		}
	}
}
