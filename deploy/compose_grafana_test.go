package deploy_test

import (
	"os"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestComposeRunsGrafanaFromFiles: Grafana is optional (profile grafana: a plain `up`
// must not fail where its image is missing), needs a login (no anonymous access, no
// sign-up, the admin password from its own secrets volume, never in the file), is
// published on loopback port 3001 (3000 is the login app), and gets its data sources
// and dashboards from the repository's files, read-only, which exist.
func TestComposeRunsGrafanaFromFiles(t *testing.T) {
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Profiles    []string          `yaml:"profiles"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	g, ok := f.Services["grafana"]
	if !ok {
		t.Fatal("no grafana service in docker-compose.yml")
	}
	if !slices.Equal(g.Profiles, []string{"grafana"}) {
		t.Errorf("grafana: profiles %q, want [grafana]", g.Profiles)
	}
	for k, want := range map[string]string{
		"GF_AUTH_ANONYMOUS_ENABLED":        "false",
		"GF_USERS_ALLOW_SIGN_UP":           "false",
		"GF_SECURITY_ADMIN_PASSWORD__FILE": "/run/secrets/warren/admin_password",
		"GF_SECURITY_ADMIN_PASSWORD":       "",
	} {
		if got := g.Environment[k]; got != want {
			t.Errorf("grafana: %s %q, want %q", k, got, want)
		}
	}
	if !slices.Equal(g.Ports, []string{"127.0.0.1:${GRAFANA_PORT:-3001}:3000"}) {
		t.Errorf("grafana: ports %q, want 127.0.0.1:${GRAFANA_PORT:-3001}:3000", g.Ports)
	}
	for _, v := range []string{
		"./deploy/grafana/provisioning:/etc/grafana/provisioning:ro",
		"./deploy/grafana/dashboards:/etc/grafana/dashboards:ro",
		"grafana-secrets:/run/secrets/warren:ro",
	} {
		if !slices.Contains(g.Volumes, v) {
			t.Errorf("grafana: volumes %q lack %s", g.Volumes, v)
		}
	}
	if !slices.Contains(f.Services["secrets"].Volumes, "grafana-secrets:/secrets/grafana") {
		t.Error("secrets does not write grafana-secrets")
	}
	for _, file := range []string{
		"grafana/provisioning/datasources/datasources.yml",
		"grafana/provisioning/dashboards/dashboards.yml",
	} {
		if _, err := os.Stat(file); err != nil {
			t.Error(err)
		}
	}
}
