package events_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/warrenhq/warren/shared/events"
)

var update = flag.Bool("update", false, "rewrite deploy/rabbitmq/definitions.json from the topology")

const definitionsFile = "../../deploy/rabbitmq/definitions.json"

// The broker loads deploy/rabbitmq/definitions.json at boot; the services declare the same
// topology from code. This test keeps the two from drifting apart: after changing the
// topology, run `go test ./events -update` in shared/.
func TestDefinitionsFileMatchesTopology(t *testing.T) {
	want, err := json.MarshalIndent(events.Topology(events.DefaultSMSRegions).Definitions("/"), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile(definitionsFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(definitionsFile)
	if err != nil {
		t.Fatalf("%v (run go test ./events -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date with events.Topology: run `go test ./events -update` in shared/", definitionsFile)
	}
}
