// Package tilt holds what the Tiltfile at the repository root uses (the dev image and its
// tar) and the test that checks the Tiltfile where Tilt itself is not installed.
package tilt

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
	"go.yaml.in/yaml/v3"
)

// repoRoot is where the Tiltfile is; `go test` runs in deploy/tilt.
const repoRoot = "../.."

// TestTiltfile runs the Tiltfile with Tilt's functions replaced by recorders and checks the
// result against docker-compose.yml. It is no substitute for `tilt ci`, which runs it for
// real, but it catches a service left out, a path that moved, a live update that cannot
// work and a resource name that does not exist.
func TestTiltfile(t *testing.T) {
	tf := runTiltfile(t, filepath.Join(repoRoot, "Tiltfile"))
	compose := readCompose(t, filepath.Join(repoRoot, "docker-compose.yml"))

	if !slices.Equal(tf.composeFiles, []string{"docker-compose.yml"}) {
		t.Fatalf("docker_compose(%q), want docker-compose.yml", tf.composeFiles)
	}
	outputs := tf.buildOutputs()

	for name, svc := range compose.Services {
		if len(svc.Profiles) > 0 {
			continue
		}
		dc, ok := tf.dcResources[name]
		if !ok || len(dc.labels) == 0 {
			t.Errorf("compose service %s: no dc_resource with labels", name)
		}
		if svc.Build == nil {
			continue
		}
		ref := imageName(defaults(svc.Image))
		b, ok := tf.dockerBuilds[ref]
		if !ok {
			t.Errorf("compose service %s is built (build:) but no docker_build(%q) replaces that build", name, ref)
			continue
		}
		checkLiveUpdate(t, name, b, outputs)
		for _, src := range b.syncSources() {
			producer := outputs[src]
			if producer != "" && !slices.Contains(dc.resourceDeps, producer) {
				t.Errorf("dc_resource %s does not depend on %s, which builds %s", name, producer, src)
			}
		}
	}

	for name, dc := range tf.dcResources {
		if _, ok := compose.Services[name]; !ok {
			t.Errorf("dc_resource(%q): no such compose service", name)
		}
		for _, dep := range dc.resourceDeps {
			_, isLocal := tf.localResources[dep]
			if _, isService := compose.Services[dep]; !isLocal && !isService {
				t.Errorf("dc_resource %s depends on %q: no such resource", name, dep)
			}
		}
	}
	tf.checkPaths(t, outputs)
}

func checkLiveUpdate(t *testing.T, service string, b dockerBuild, outputs map[string]string) {
	t.Helper()
	steps := b.liveUpdate
	if len(steps) < 2 || !slices.ContainsFunc(steps, func(s step) bool { return s.kind == "sync" }) ||
		steps[len(steps)-1].kind != "restart_container" {
		t.Errorf("%s: live_update = %v, want sync(...) steps ending in restart_container()", service, steps)
	}
	for _, s := range steps {
		if s.kind == "run" {
			t.Errorf("%s: run() in live_update: the image has no shell", service)
		}
	}
	for _, src := range b.syncSources() {
		if outputs[src] == "" {
			t.Errorf("%s: sync(%q): no local_resource builds it", service, src)
		}
	}
	for _, o := range b.only {
		if p := path.Join(b.context, o); outputs[p] == "" {
			t.Errorf("%s: docker_build only=%q: %s is built by no local_resource", service, o, p)
		}
	}
}

// checkPaths requires every path the Tiltfile names to exist in the repository, except the
// build outputs (and the folder they go to), which a fresh checkout does not have yet.
func (tf *tiltfile) checkPaths(t *testing.T, outputs map[string]string) {
	t.Helper()
	excepted := map[string]bool{}
	for o := range outputs {
		excepted[o], excepted[path.Dir(o)] = true, true
	}
	var paths []string
	for _, r := range tf.localResources {
		paths = append(paths, r.deps...)
		paths = append(paths, r.goPackage())
	}
	for _, b := range tf.dockerBuilds {
		paths = append(paths, b.context, b.dockerfile)
		for _, src := range b.syncSources() {
			paths = append(paths, path.Dir(src))
		}
	}
	for _, p := range paths {
		if p == "" || excepted[path.Clean(p)] {
			continue
		}
		if _, err := os.Stat(filepath.Join(repoRoot, p)); err != nil {
			t.Errorf("the Tiltfile names %q, which does not exist: %v", p, err)
		}
	}
}

type composeFile struct {
	Services map[string]struct {
		Image string `yaml:"image"`
		Build any    `yaml:"build"`
		// Profiles: a service with one is a tool that `up`, and so Tilt, does not start.
		Profiles []string `yaml:"profiles"`
	} `yaml:"services"`
}

func readCompose(t *testing.T, file string) composeFile {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(c.Services) == 0 {
		t.Fatalf("%s: no services", file)
	}
	return c
}

// variable is a compose interpolation: ${NAME}, ${NAME:-default} or ${NAME-default}.
var variable = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}`)

// defaults interpolates s as compose would in an empty environment.
func defaults(s string) string {
	return variable.ReplaceAllString(s, "$1")
}

// imageName strips the tag: Tilt matches docker_build("warren/order") with the compose
// image "warren/order:${WARREN_TAG:-dev}".
func imageName(image string) string {
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i]
	}
	return image
}

func runTiltfile(t *testing.T, file string) *tiltfile {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tf := newTiltfile()
	// Tilt's dialect of Starlark allows top-level for and if, and reassigning globals.
	opts := &syntax.FileOptions{TopLevelControl: true, GlobalReassign: true, Set: true, While: true, Recursion: true}
	thread := &starlark.Thread{Name: "Tiltfile", Print: func(_ *starlark.Thread, msg string) { t.Log(msg) }}
	if _, err := starlark.ExecFileOptions(opts, thread, "Tiltfile", src, tf.builtins()); err != nil {
		if e, ok := err.(*starlark.EvalError); ok {
			t.Fatalf("Tiltfile: %s", e.Backtrace())
		}
		t.Fatalf("Tiltfile: %v", err)
	}
	return tf
}

// stubOS is Tilt's os module, as much of it as a Tiltfile reads: getenv returns the default.
var stubOS = &starlarkstruct.Module{Name: "os", Members: starlark.StringDict{
	"getenv": starlark.NewBuiltin("getenv", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var key string
		var def starlark.Value = starlark.None
		if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "key", &key, "default?", &def); err != nil {
			return nil, err
		}
		return def, nil
	}),
}}
