package service_test

import (
	"testing"

	"github.com/warrenhq/warren/shared/service"
)

// Every service's ops /metrics serves the database round trips, without a line in its
// main.go: the benchmark reads them from each service.
func TestNewRegistryServesTheDatabaseRoundTrips(t *testing.T) {
	families, err := service.NewRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "warren_db_round_trips_total" {
			return
		}
	}
	t.Error("no warren_db_round_trips_total in the registry")
}
