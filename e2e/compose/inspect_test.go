package compose

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// inspected is what docker inspect says of one of the project's containers: how it was
// started and how it ended.
type inspected struct {
	Config struct {
		User   string
		Labels map[string]string
	}
	HostConfig struct {
		ReadonlyRootfs bool
		CapDrop        []string
		SecurityOpt    []string
		Memory         int64
		PidsLimit      *int64
	}
	State struct {
		Status    string
		ExitCode  int
		OOMKilled bool
	}
}

func (c inspected) service() string { return c.Config.Labels["com.docker.compose.service"] }

// Inspect returns the project's containers as docker inspect sees them, by service.
func (p *project) Inspect(t *testing.T) map[string][]inspected {
	t.Helper()
	ids := strings.Fields(docker(t, "ps", "-aq", "--filter", p.label()))
	if len(ids) == 0 {
		t.Fatalf("%s has no containers", p.name)
	}
	var all []inspected
	if err := json.Unmarshal([]byte(docker(t, append([]string{"inspect"}, ids...)...)), &all); err != nil {
		t.Fatalf("docker inspect: %v", err)
	}
	by := map[string][]inspected{}
	for _, c := range all {
		by[c.service()] = append(by[c.service()], c)
	}
	return by
}

// CheckHardened checks that the engine really runs each of services' containers as
// docker-compose.yml asks (deploy/compose_test.go reads the file; this checks that the
// compose in use applied it): read-only root, non-root unless listed in asRoot, no
// capability, no new privileges, memory and process limits.
func (p *project) CheckHardened(t *testing.T, asRoot []string, services ...string) {
	t.Helper()
	by := p.Inspect(t)
	for _, s := range services {
		if len(by[s]) == 0 {
			t.Errorf("%s: no container", s)
		}
		for _, c := range by[s] {
			h := c.HostConfig
			if !h.ReadonlyRootfs {
				t.Errorf("%s: root file system is writable", s)
			}
			if root := c.Config.User == "" || c.Config.User == "0" || strings.HasPrefix(c.Config.User, "0:"); root != slices.Contains(asRoot, s) {
				t.Errorf("%s runs as user %q", s, c.Config.User)
			}
			if !slices.Equal(h.CapDrop, []string{"ALL"}) {
				t.Errorf("%s: capabilities dropped %q, want ALL", s, h.CapDrop)
			}
			if !slices.Contains(h.SecurityOpt, "no-new-privileges:true") {
				t.Errorf("%s: security options %q lack no-new-privileges", s, h.SecurityOpt)
			}
			if h.Memory <= 0 || h.PidsLimit == nil || *h.PidsLimit <= 0 {
				t.Errorf("%s: memory limit %d, pids limit %v: want both set", s, h.Memory, h.PidsLimit)
			}
		}
	}
}

// CheckStoppedCleanly checks that each of services' containers has stopped with exit
// status 0, not killed by the OOM killer or by SIGKILL at the end of its grace period: a
// graceful shutdown that a read-only file system or a limit did not cut short.
func (p *project) CheckStoppedCleanly(t *testing.T, services ...string) {
	t.Helper()
	by := p.Inspect(t)
	for _, s := range services {
		for _, c := range by[s] {
			if c.State.Status != "exited" || c.State.ExitCode != 0 || c.State.OOMKilled {
				t.Errorf("%s: %s with exit status %d (OOM killed: %t), want exited with 0",
					s, c.State.Status, c.State.ExitCode, c.State.OOMKilled)
			}
		}
	}
}
