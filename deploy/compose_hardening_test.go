package deploy_test

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/warrenhq/warren/deploy/internal/brokeraccess"
)

// runsAsRoot lists the Warren containers allowed to run as root, and why. Root without a
// capability cannot bypass file permissions: it writes only what root owns.
var runsAsRoot = map[string]string{
	"secrets": "new volumes belong to root, and it writes every secrets volume",
}

// hardenedThirdParty lists the containers of third-party images hardened like Warren's:
// they need no root, no capability and no writable root file system either.
var hardenedThirdParty = []string{"hydra", "hydra-migrate", "prometheus", "alertmanager", "postgres-exporter", "grafana"}

// TestComposeHardensEveryWarrenContainer: every container of a Warren image (the services
// and the warrenctl one-shots), and those of hardenedThirdParty, runs with a read-only root file system, as a numeric
// non-root user, with no capability, no way to gain privileges, and bounded memory and
// process count (x-hardening in docker-compose.yml). A container that misses one runs
// with Docker's defaults, which is everything this test refuses.
func TestComposeHardensEveryWarrenContainer(t *testing.T) {
	_, services := readCompose(t)
	var warren []string
	for name, svc := range services {
		if !strings.HasPrefix(svc.Image, "warren/") && !slices.Contains(hardenedThirdParty, name) {
			continue
		}
		if strings.HasPrefix(svc.Image, "warren/") {
			warren = append(warren, name)
		}
		if !svc.ReadOnly {
			t.Errorf("%s: read_only is not true: its root file system is writable", name)
		}
		if why, ok := runsAsRoot[name]; ok {
			if svc.User != "0:0" {
				t.Errorf("%s: user %q; it is listed as running as root (%s): update runsAsRoot", name, svc.User, why)
			}
			if svc.NetworkMode != "none" {
				t.Errorf("%s runs as root with network_mode %q, want none", name, svc.NetworkMode)
			}
		} else if err := nonRootUser(svc.User); err != nil {
			t.Errorf("%s: user: %v", name, err)
		}
		if !slices.Equal(svc.CapDrop, []string{"ALL"}) {
			t.Errorf("%s: cap_drop %q, want [ALL]", name, svc.CapDrop)
		}
		if !slices.Contains(svc.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: security_opt %q lacks no-new-privileges:true", name, svc.SecurityOpt)
		}
		limit, err := byteSize(svc.MemLimit, composeUnits)
		if err != nil {
			t.Errorf("%s: mem_limit: %v", name, err)
		}
		if svc.PidsLimit <= 0 {
			t.Errorf("%s: pids_limit %d, want a positive limit", name, svc.PidsLimit)
		}
		// A Go service's garbage collector must work harder before the kernel kills it.
		if slices.Contains(brokeraccess.Names(), name) && limit > 0 {
			soft, err := byteSize(svc.Environment["GOMEMLIMIT"], goUnits)
			switch {
			case err != nil:
				t.Errorf("%s: GOMEMLIMIT: %v", name, err)
			case soft >= limit:
				t.Errorf("%s: GOMEMLIMIT %s is not below mem_limit %s", name, svc.Environment["GOMEMLIMIT"], svc.MemLimit)
			}
		}
	}
	for _, name := range append(brokeraccess.Names(), "secrets", "broker-setup", "oidc-setup", "login", "token", "load", "live") {
		if !slices.Contains(warren, name) {
			t.Errorf("%s: not in docker-compose.yml with a warren/ image", name)
		}
	}
	for _, name := range hardenedThirdParty {
		if _, ok := services[name]; !ok {
			t.Errorf("%s: not in docker-compose.yml", name)
		}
	}
}

// TestDockerfilesRunAsNonRoot: an image run outside compose (the e2e suite, a cluster)
// gets its user from the Dockerfile, so every Warren image's last USER is numeric (a
// runtime can check a number is not root without an /etc/passwd) and not 0.
func TestDockerfilesRunAsNonRoot(t *testing.T) {
	files := []string{"cmd/warrenctl/Dockerfile", "cmd/warren-login/Dockerfile", "cmd/warren-load/Dockerfile"}
	for _, name := range brokeraccess.Names() {
		files = append(files, "../services/"+name+"/Dockerfile")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Error(err)
			continue
		}
		users := dockerfileUser.FindAllStringSubmatch(string(b), -1)
		if len(users) == 0 {
			t.Errorf("%s: no USER: the image runs as root", f)
			continue
		}
		if err := nonRootUser(users[len(users)-1][1]); err != nil {
			t.Errorf("%s: USER: %v", f, err)
		}
	}
}

var dockerfileUser = regexp.MustCompile(`(?m)^USER\s+(\S+)\s*$`)

// nonRootUser checks a user is uid:gid, both numbers, neither 0.
func nonRootUser(user string) error {
	uid, gid, ok := strings.Cut(user, ":")
	if !ok {
		return fmt.Errorf("%q, want uid:gid", user)
	}
	for _, id := range []string{uid, gid} {
		n, err := strconv.Atoi(id)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q, want numeric non-root ids", user)
		}
	}
	return nil
}

var (
	composeUnits = map[string]int64{"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
	goUnits      = map[string]int64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
	sizePattern  = regexp.MustCompile(`^([0-9]+)([A-Za-z]+)$`)
)

// byteSize reads a size such as 256m (compose) or 200MiB (GOMEMLIMIT) in bytes.
func byteSize(s string, units map[string]int64) (int64, error) {
	m := sizePattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	unit, ok := units[m[2]]
	n, err := strconv.ParseInt(m[1], 10, 64)
	if !ok || err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive size", s)
	}
	return n * unit, nil
}
