package compose

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warrenhq/warren/e2e"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/testkit"
)

// The compose file's services.
var services = []string{"rabbitmq", "postgres", "order", "inventory", "email", "sms", "analytics", "mailpit", "jaeger"}

// TestComposeFile runs docker-compose.yml as a user would: up, healthy, one order confirmed
// and mailed, then down, leaving nothing behind.
func TestComposeFile(t *testing.T) {
	testkit.Integration(t)
	root, err := e2e.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "docker-compose.yml")
	if _, err := os.Stat(file); err != nil {
		t.Skipf("no compose file to check: %v", err)
	}
	p := newProject(t, root, file)

	start := time.Now()
	p.Compose(t, 5*time.Minute, "up", "-d")
	p.WaitHealthy(t, 3*time.Minute, services...)
	up := time.Since(start)

	order := e2e.NewOrderAPI(p.Port(t, "order", 8080))
	mailpit := e2e.NewMailpit(p.Port(t, "mailpit", 8025))
	customer := events.Customer{Name: "Ada", Email: p.name + "@example.com", Phone: "+44 20 7946 0958"}
	id := order.Place(t, e2e.OrderRequest{Customer: customer, Region: events.RegionEurope,
		Items: []e2e.Line{{SKU: "carrot-seeds", Quantity: 1}}}, nil)
	if o := order.Settled(t, id); o.Status != e2e.StatusConfirmed {
		t.Fatalf("order %s is %s (%s), want confirmed", id, o.Status, o.Reason)
	}
	mailpit.WaitFor(t, customer.Email, e2e.MailReceived, e2e.MailConfirmed)

	volumes := p.Volumes(t)
	p.Compose(t, 2*time.Minute, "down", "-v", "--remove-orphans")
	if left := p.Leftovers(t, volumes); len(left) > 0 {
		t.Errorf("down left %v behind", left)
	}
	t.Logf("compose: %s up and healthy in %s, order %s confirmed and mailed, down left nothing (%d volumes removed)",
		p.name, up.Round(time.Second), id, len(volumes))
}
