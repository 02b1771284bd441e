package deploy_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// defaultPrometheusImage is the Prometheus image compose runs (docker-compose.yml), overridden
// by PROMETHEUS_IMAGE as `make images` does where a stand-in is built.
const defaultPrometheusImage = "prom/prometheus:v2.53.3"

// TestAlertRules checks deploy/prometheus/rules/*.yml with the promtool of the Prometheus
// that loads them, and runs their unit tests (deploy/prometheus/tests/*.yml): every rule
// fires in one case and stays silent in a near miss. promtool runs in the Prometheus image,
// so the test needs nothing but Docker; a missing image fails it (make images provides it)
// rather than skipping it, or CI would pass without the rules ever being evaluated.
func TestAlertRules(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker and the Prometheus image (run without -short)")
	}
	image := defaultPrometheusImage
	if v := os.Getenv("PROMETHEUS_IMAGE"); v != "" {
		image = v
	}
	dir, err := filepath.Abs("prometheus")
	if err != nil {
		t.Fatal(err)
	}
	rules := glob(t, dir, "rules/*.yml")
	tests := glob(t, dir, "tests/*.yml")

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", image).CombinedOutput(); err != nil {
		t.Fatalf("Prometheus image %s is not present (run `make images`, or set PROMETHEUS_IMAGE): %v: %s", image, err, out)
	}
	promtool := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, "docker", append([]string{
			"run", "--rm", "--network", "none", "--entrypoint", "promtool",
			"-v", dir + ":/etc/prometheus:ro", "-w", "/etc/prometheus", image,
		}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
	}
	promtool(append([]string{"check", "rules"}, rules...)...)
	promtool(append([]string{"test", "rules"}, tests...)...)
}

// glob returns the files matching pattern under dir, relative to dir; none is an error.
func glob(t *testing.T, dir, pattern string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(matches) == 0 {
		t.Fatalf("no %s under %s", pattern, dir)
	}
	rel := make([]string, len(matches))
	for i, m := range matches {
		rel[i], _ = filepath.Rel(dir, m)
	}
	return rel
}
