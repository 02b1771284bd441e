package deploy_test

import (
	"os"
	"strings"
	"testing"
)

// warrenDockerfiles are the Dockerfiles of Warren's own images, from this folder.
var warrenDockerfiles = []string{
	"../services/analytics/Dockerfile", "../services/email/Dockerfile", "../services/inventory/Dockerfile",
	"../services/order/Dockerfile", "../services/sms/Dockerfile",
	"cmd/warrenctl/Dockerfile", "cmd/warren-login/Dockerfile", "cmd/warren-load/Dockerfile", "cmd/warren-live/Dockerfile",
}

// TestDockerfilesShareTheirBuildStages: Docker reuses a cached layer only for an identical
// instruction on an identical parent, so the modules and build stages must be the same, byte
// for byte, in every Warren Dockerfile; one that drifts compiles everything again, and
// `make images` takes minutes more.
func TestDockerfilesShareTheirBuildStages(t *testing.T) {
	var first, firstFile string
	for _, f := range warrenDockerfiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		start := strings.Index(text, "FROM ${GO_IMAGE} AS modules")
		end := strings.Index(text, "\nFROM scratch")
		if start < 0 || end < start {
			t.Fatalf("%s: no modules stage followed by a scratch stage", f)
		}
		stages := text[start:end]
		// The comment above the final stage is not an instruction.
		stages = stages[:strings.LastIndex(stages, "\n\n")]
		if first == "" {
			first, firstFile = stages, f
			continue
		}
		if stages != first {
			t.Errorf("%s: its modules and build stages differ from %s's; keep them equal", f, firstFile)
		}
	}
	if !strings.Contains(first, "go build") {
		t.Errorf("the shared build stage builds nothing:\n%s", first)
	}
}
