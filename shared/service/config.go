package service

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
)

// LoadConfig parses the environment into a T, whose fields say their variable and default
// with `env:"NAME" envDefault:"value"` tags, and logs the result with secrets masked: a
// field tagged `secret:"true"` is shown as "***", a URL with its password replaced. When T
// has a Validate() error method, a configuration it rejects is an error too.
//
// Any setting NAME can also come from a file named by NAME_FILE (Docker and Kubernetes
// secrets are mounted as files), e.g. AMQP_URL_FILE=/run/secrets/amqp_url; NAME itself wins
// when both are set.
func LoadConfig[T any](logger *slog.Logger) (T, error) {
	var cfg T
	environment, err := environmentWithFiles(reflect.TypeOf(cfg))
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	cfg, err = env.ParseAsWithOptions[T](env.Options{Environment: environment})
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	logger.Info("configuration", "config", Describe(cfg))
	if v, ok := any(cfg).(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
	}
	return cfg, nil
}

// environmentWithFiles is the process environment plus, for every setting of t that is
// not set but whose NAME_FILE is, the content of that file.
func environmentWithFiles(t reflect.Type) (map[string]string, error) {
	environment := env.ToMap(os.Environ())
	for _, name := range settingNames(t) {
		path, ok := environment[name+"_FILE"]
		if _, set := environment[name]; set || !ok {
			continue
		}
		content, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s_FILE: %w", name, err)
		}
		environment[name] = strings.TrimRight(string(content), "\r\n")
	}
	return environment, nil
}

// settingNames lists the env names of t's fields, embedded and nested structs included.
func settingNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		// Embedded and nested structs alike (BaseConfig.Auth), as env parses them.
		if f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" && f.Type.PkgPath() != "time" {
			names = append(names, settingNames(f.Type)...)
			continue
		}
		if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// Describe renders a config struct as name → value with secrets masked.
func Describe(cfg any) map[string]any {
	out := map[string]any{}
	describe(reflect.ValueOf(cfg), out)
	return out
}

func describe(v reflect.Value, out map[string]any) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Tag.Get("env")
		switch {
		case f.Anonymous || (fv.Kind() == reflect.Struct && name == "" && f.Type.PkgPath() != "time"):
			describe(fv, out)
		case name == "":
		case f.Tag.Get("secret") == "true":
			out[name] = "***"
		case fv.Kind() == reflect.String:
			out[name] = redactURL(fv.String())
		default:
			out[name] = fmt.Sprint(fv.Interface())
		}
	}
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
