package stats

import (
	"os"
	"testing"

	"github.com/warrenhq/warren/shared/testkit"
)

// TestMain removes the containers the tests start (testkit.SharedPostgres and the others):
// with Ryuk off, as Warren runs testcontainers, nothing else would.
func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }
