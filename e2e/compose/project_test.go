package compose

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/e2e"
)

// project is one Compose project started by a test: docker-compose.yml under a name of its
// own, so that its containers, volumes and networks are told apart by the label
// com.docker.compose.project.
type project struct {
	name, dir, file string
	compose         []string // "docker compose" where available, else "docker-compose"
	env             []string // the free host ports, NAME_PORT=n
	down            bool
}

// newProject prepares a project for file and makes sure it is taken down when t ends,
// even when t fails half-way. It holds e2e.LockHost meanwhile: the e2e package's own system
// must not run at the same time on a small machine.
//
// Every host port the file publishes through a ${NAME_PORT:-default} variable is moved to
// a free port, so that the project never clashes with a stack already running on the
// host (a developer's, or CI's other jobs); Port tells where a service ended up.
func newProject(t *testing.T, dir, file string) *project {
	t.Helper()
	compose, err := composeCommand()
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := e2e.LockHost()
	if err != nil {
		t.Fatal(err)
	}
	p := &project{name: fmt.Sprintf("warren-e2e-%d", time.Now().UnixNano()), dir: dir, file: file, compose: compose}
	for _, m := range portVariable.FindAllStringSubmatch(string(text), -1) {
		p.env = append(p.env, fmt.Sprintf("%s=%d", m[1], freePort(t)))
	}
	t.Cleanup(func() {
		defer unlock()
		if p.down {
			return
		}
		if t.Failed() {
			out, _ := p.run(context.Background(), "ps")
			logs, _ := p.run(context.Background(), "logs", "--no-color", "--tail=40")
			t.Logf("%s ps:\n%s\nlogs:\n%s", p.name, out, logs)
		}
		if out, err := p.run(context.Background(), "down", "-v", "--remove-orphans"); err != nil {
			t.Errorf("%s down: %v\n%s", p.name, err, out)
		}
	})
	return p
}

// portVariable is a published host port's variable in the compose file, e.g.
// ${ORDER_PORT:-8081}.
var portVariable = regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*_PORT):-[0-9]+\}`)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Port returns the base URL at which service's containerPort is published on the host.
func (p *project) Port(t *testing.T, service string, containerPort int) string {
	t.Helper()
	out, err := p.run(t.Context(), "port", service, fmt.Sprint(containerPort))
	addr := strings.TrimSpace(out)
	if err != nil || addr == "" {
		t.Fatalf("compose port %s %d: %v %s", service, containerPort, err, out)
	}
	return "http://" + addr
}

func composeCommand() ([]string, error) {
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}, nil
	}
	if path, err := exec.LookPath("docker-compose"); err == nil {
		return []string{path}, nil
	}
	return nil, errors.New("neither `docker compose` nor `docker-compose` is installed")
}

// run runs a compose subcommand on the project and returns its combined output.
func (p *project) run(ctx context.Context, args ...string) (string, error) {
	argv := append(append(p.compose[1:len(p.compose):len(p.compose)], "-p", p.name, "-f", p.file), args...)
	cmd := exec.CommandContext(ctx, p.compose[0], argv...)
	cmd.Dir = p.dir
	// Image names and the tag of Warren's images pass through (RABBITMQ_IMAGE, WARREN_TAG, ...).
	cmd.Env = append(os.Environ(), p.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Compose runs a compose subcommand that must succeed within timeout.
func (p *project) Compose(t *testing.T, timeout time.Duration, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	if out, err := p.run(ctx, args...); err != nil {
		t.Fatalf("compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if len(args) > 0 && args[0] == "down" {
		p.down = true
	}
}

// Output runs a compose subcommand that must succeed within timeout and returns its
// standard output.
func (p *project) Output(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	argv := append(append(p.compose[1:len(p.compose):len(p.compose)], "-p", p.name, "-f", p.file), args...)
	cmd := exec.CommandContext(ctx, p.compose[0], argv...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), p.env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("compose %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// containerState is one of the project's containers as docker ps shows it.
type containerState struct {
	service, state, status string
}

func (p *project) containers(t *testing.T) []containerState {
	t.Helper()
	out := docker(t, "ps", "-a", "--filter", p.label(),
		"--format", `{{.Label "com.docker.compose.service"}}|{{.State}}|{{.Status}}`)
	var cs []containerState
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.SplitN(line, "|", 3); len(f) == 3 {
			cs = append(cs, containerState{f[0], f[1], f[2]})
		}
	}
	return cs
}

// WaitHealthy waits until each of services runs, healthy where its container has a
// healthcheck, and fails at once when a container exits with an error (a one-shot job such
// as broker-setup may exit, with 0).
func (p *project) WaitHealthy(t *testing.T, timeout time.Duration, services ...string) {
	t.Helper()
	e2e.Eventually(t, timeout, p.name+" healthy", func() error {
		ready := map[string]bool{}
		var waiting []string
		for _, c := range p.containers(t) {
			switch {
			case c.state == "exited" && !strings.HasPrefix(c.status, "Exited (0)"):
				t.Fatalf("%s: %s", c.service, c.status)
			case c.state != "running":
			case strings.Contains(c.status, "(health: starting)"), strings.Contains(c.status, "(unhealthy)"):
				waiting = append(waiting, c.service+": "+c.status)
			default:
				ready[c.service] = true
			}
		}
		for _, s := range services {
			if !ready[s] {
				return fmt.Errorf("%s not running and healthy yet (%v)", s, waiting)
			}
		}
		return nil
	})
}

// Volumes lists the volumes the project's containers mount, named or anonymous (an
// anonymous volume carries no project label, so only this list finds it afterwards).
func (p *project) Volumes(t *testing.T) []string {
	t.Helper()
	ids := strings.Fields(docker(t, "ps", "-aq", "--filter", p.label()))
	if len(ids) == 0 {
		return nil
	}
	out := docker(t, append([]string{"inspect", "--format", `{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}`}, ids...)...)
	return strings.Fields(out)
}

// Leftovers lists what remains of the project: containers, volumes and networks with its
// label, and any of volumes that still exists.
func (p *project) Leftovers(t *testing.T, volumes []string) []string {
	t.Helper()
	var left []string
	for _, kind := range [][]string{{"container", "ps", "-aq"}, {"volume", "volume", "ls", "-q"}, {"network", "network", "ls", "-q"}} {
		for _, id := range strings.Fields(docker(t, append(kind[1:], "--filter", p.label())...)) {
			left = append(left, kind[0]+" "+id)
		}
	}
	for _, v := range volumes {
		if exec.Command("docker", "volume", "inspect", v).Run() == nil {
			left = append(left, "volume "+v)
		}
	}
	return left
}

func (p *project) label() string { return "label=com.docker.compose.project=" + p.name }

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "docker", args...).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = fmt.Errorf("%w: %s", err, exit.Stderr)
		}
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}
