package service

import (
	"fmt"
	"log/slog"
	"net/url"
	"reflect"

	"github.com/caarlos0/env/v11"
)

// LoadConfig parses the environment into a T, whose fields say their variable and default
// with `env:"NAME" envDefault:"value"` tags, and logs the result with secrets masked: a
// field tagged `secret:"true"` is shown as "***", a URL with its password replaced. When T
// has a Validate() error method, a configuration it rejects is an error too.
func LoadConfig[T any](logger *slog.Logger) (T, error) {
	cfg, err := env.ParseAs[T]()
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
