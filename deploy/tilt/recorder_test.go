package tilt

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"go.starlark.net/starlark"
)

// tiltfile records what a Tiltfile asked Tilt for. Each stub accepts the parameters of the
// real function (https://docs.tilt.dev/api.html) and no others, so a misspelt argument
// fails here as it would under Tilt.
type tiltfile struct {
	composeFiles   []string
	localResources map[string]localResource
	dockerBuilds   map[string]dockerBuild // by image name
	dcResources    map[string]dcResource
}

type localResource struct {
	cmd  string
	deps []string
}

type dockerBuild struct {
	context, dockerfile string
	only                []string
	liveUpdate          []step
}

type dcResource struct {
	labels, resourceDeps []string
}

func newTiltfile() *tiltfile {
	return &tiltfile{
		localResources: map[string]localResource{},
		dockerBuilds:   map[string]dockerBuild{},
		dcResources:    map[string]dcResource{},
	}
}

// outputFlag finds what a `go build -o PATH ...` command writes.
var outputFlag = regexp.MustCompile(`\s-o\s+(\S+)`)

// buildOutputs maps each file a local_resource builds to that resource's name.
func (tf *tiltfile) buildOutputs() map[string]string {
	out := map[string]string{}
	for name, r := range tf.localResources {
		for _, m := range outputFlag.FindAllStringSubmatch(r.cmd, -1) {
			out[path.Clean(m[1])] = name
		}
	}
	return out
}

// goPackage is the package a `go build` command builds (its last argument), or "".
func (r localResource) goPackage() string {
	f := strings.Fields(r.cmd)
	if len(f) == 0 || !strings.Contains(r.cmd, "go build") {
		return ""
	}
	return f[len(f)-1]
}

func (b dockerBuild) syncSources() []string {
	var out []string
	for _, s := range b.liveUpdate {
		if s.kind == "sync" {
			out = append(out, path.Clean(s.local))
		}
	}
	return out
}

// step is a live update step: sync(local, remote), run(cmd) or restart_container().
type step struct{ kind, local, remote string }

func (s step) String() string {
	return fmt.Sprintf("%s(%s)", s.kind, strings.Trim(s.local+", "+s.remote, ", "))
}
func (s step) Type() string          { return "live_update_step" }
func (s step) Freeze()               {}
func (s step) Truth() starlark.Bool  { return true }
func (s step) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: %s", s.Type()) }

type builtinFunc = func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)

func (tf *tiltfile) builtins() starlark.StringDict {
	fns := map[string]builtinFunc{
		"docker_compose":    tf.dockerCompose,
		"local_resource":    tf.localResource,
		"docker_build":      tf.dockerBuild,
		"dc_resource":       tf.dcResource,
		"sync":              stubSync,
		"run":               stubRun,
		"restart_container": stubRestart,
		"link":              stubLink,
		"update_settings":   stubUpdateSettings,
	}
	out := starlark.StringDict{"os": stubOS}
	for name, fn := range fns {
		out[name] = starlark.NewBuiltin(name, fn)
	}
	return out
}

func (tf *tiltfile) dockerCompose(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var configPaths, envFile, projectName, profiles, wait starlark.Value
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "configPaths", &configPaths, "env_file?", &envFile,
		"project_name?", &projectName, "profiles?", &profiles, "wait?", &wait); err != nil {
		return nil, err
	}
	tf.composeFiles = append(tf.composeFiles, strs(configPaths)...)
	return starlark.None, nil
}

func (tf *tiltfile) localResource(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	var cmd, deps, ignored starlark.Value
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "name", &name, "cmd?", &cmd, "deps?", &deps,
		"trigger_mode?", &ignored, "resource_deps?", &ignored, "ignore?", &ignored, "auto_init?", &ignored,
		"serve_cmd?", &ignored, "cmd_bat?", &ignored, "serve_cmd_bat?", &ignored, "allow_parallel?", &ignored,
		"links?", &ignored, "tags?", &ignored, "env?", &ignored, "serve_env?", &ignored,
		"readiness_probe?", &ignored, "dir?", &ignored, "serve_dir?", &ignored, "labels?", &ignored); err != nil {
		return nil, err
	}
	if _, dup := tf.localResources[name]; dup {
		return nil, fmt.Errorf("local_resource %q declared twice", name)
	}
	tf.localResources[name] = localResource{cmd: strings.Join(strs(cmd), " "), deps: strs(deps)}
	return starlark.None, nil
}

func (tf *tiltfile) dockerBuild(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var ref, context string
	dockerfile := "Dockerfile"
	var only, liveUpdate, ignored starlark.Value
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "ref", &ref, "context", &context,
		"build_args?", &ignored, "dockerfile?", &dockerfile, "dockerfile_contents?", &ignored,
		"live_update?", &liveUpdate, "match_in_env_vars?", &ignored, "ignore?", &ignored, "only?", &only,
		"entrypoint?", &ignored, "target?", &ignored, "ssh?", &ignored, "network?", &ignored,
		"secret?", &ignored, "extra_tag?", &ignored, "container_args?", &ignored, "cache_from?", &ignored,
		"pull?", &ignored, "platform?", &ignored, "extra_hosts?", &ignored); err != nil {
		return nil, err
	}
	b := dockerBuild{context: path.Clean(context), dockerfile: dockerfile, only: strs(only)}
	if liveUpdate != nil {
		iter := starlark.Iterate(liveUpdate)
		if iter == nil {
			return nil, fmt.Errorf("docker_build %s: live_update is not a list", ref)
		}
		defer iter.Done()
		var v starlark.Value
		for iter.Next(&v) {
			s, ok := v.(step)
			if !ok {
				return nil, fmt.Errorf("docker_build %s: live_update holds %s, not a step", ref, v.Type())
			}
			b.liveUpdate = append(b.liveUpdate, s)
		}
	}
	tf.dockerBuilds[ref] = b
	return starlark.None, nil
}

func (tf *tiltfile) dcResource(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	var labels, deps, ignored starlark.Value
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "name", &name, "trigger_mode?", &ignored,
		"resource_deps?", &deps, "links?", &ignored, "labels?", &labels, "auto_init?", &ignored,
		"project_name?", &ignored, "new_name?", &ignored); err != nil {
		return nil, err
	}
	if _, dup := tf.dcResources[name]; dup {
		return nil, fmt.Errorf("dc_resource %q declared twice", name)
	}
	tf.dcResources[name] = dcResource{labels: strs(labels), resourceDeps: strs(deps)}
	return starlark.None, nil
}

func stubSync(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var local, remote string
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "local_path", &local, "remote_path", &remote); err != nil {
		return nil, err
	}
	return step{kind: "sync", local: local, remote: remote}, nil
}

func stubRun(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var cmd, ignored starlark.Value
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "cmd", &cmd, "trigger?", &ignored, "echo_off?", &ignored); err != nil {
		return nil, err
	}
	return step{kind: "run", local: strings.Join(strs(cmd), " ")}, nil
}

func stubRestart(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs); err != nil {
		return nil, err
	}
	return step{kind: "restart_container"}, nil
}

func stubLink(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var url, name string
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "url", &url, "name?", &name); err != nil {
		return nil, err
	}
	return starlark.String(url), nil
}

func stubUpdateSettings(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var ignored starlark.Value
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "max_parallel_updates?", &ignored,
		"k8s_upsert_timeout_secs?", &ignored, "suppress_unused_image_warnings?", &ignored); err != nil {
		return nil, err
	}
	return starlark.None, nil
}

// strs reads a string or a list of strings, as most Tilt parameters accept.
func strs(v starlark.Value) []string {
	switch v := v.(type) {
	case nil:
		return nil
	case starlark.String:
		return []string{string(v)}
	case starlark.Iterable:
		var out []string
		iter := v.Iterate()
		defer iter.Done()
		var x starlark.Value
		for iter.Next(&x) {
			if s, ok := x.(starlark.String); ok {
				out = append(out, string(s))
			}
		}
		return out
	}
	return nil
}
