package service

import (
	"log/slog"
	"os"
	"testing"
	"time"
)

func TestDescribeMasksSecrets(t *testing.T) {
	type cfg struct {
		BaseConfig
		DatabaseURL string        `env:"DATABASE_URL"`
		Password    string        `env:"SMTP_PASSWORD" secret:"true"`
		Timeout     time.Duration `env:"TIMEOUT"`
	}
	got := Describe(cfg{
		BaseConfig:  BaseConfig{AMQPURL: "amqp://order:s3cret@rabbitmq:5672/", HTTPAddr: ":8080"},
		DatabaseURL: "postgres://order:hunter2@db/order",
		Password:    "pa55",
		Timeout:     time.Second,
	})
	for k, want := range map[string]any{
		"AMQP_URL": "amqp://order:xxxxx@rabbitmq:5672/", "DATABASE_URL": "postgres://order:xxxxx@db/order",
		"SMTP_PASSWORD": "***", "HTTP_ADDR": ":8080", "TIMEOUT": "1s",
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
}

func TestLoadConfigReadsSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	secret := dir + "/amqp_url"
	if err := os.WriteFile(secret, []byte("amqp://order:from-file@rabbitmq:5672/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AMQP_URL_FILE", secret)
	t.Setenv("HTTP_ADDR", ":9999")
	cfg, err := LoadConfig[BaseConfig](slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AMQPURL != "amqp://order:from-file@rabbitmq:5672/" || cfg.HTTPAddr != ":9999" {
		t.Errorf("AMQP_URL %q HTTP_ADDR %q", cfg.AMQPURL, cfg.HTTPAddr)
	}

	t.Setenv("AMQP_URL", "amqp://order:from-env@rabbitmq:5672/") // the variable wins over the file
	if cfg, _ = LoadConfig[BaseConfig](slog.New(slog.DiscardHandler)); cfg.AMQPURL != "amqp://order:from-env@rabbitmq:5672/" {
		t.Errorf("AMQP_URL %q", cfg.AMQPURL)
	}

	t.Setenv("AMQP_URL_FILE", dir+"/missing")
	if _, err := LoadConfig[BaseConfig](slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("a set variable must not need its file: %v", err)
	}
}

func TestLoadConfigReadsTheAuthSettings(t *testing.T) {
	cfg, err := LoadConfig[BaseConfig](slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.Issuer != "http://localhost:4444/" || cfg.Auth.Audience != "warren-api" ||
		cfg.Auth.KeysURL() != "http://localhost:4444/.well-known/jwks.json" || cfg.OpsAddr != ":9090" {
		t.Errorf("defaults: %+v, ops %q, keys %q", cfg.Auth, cfg.OpsAddr, cfg.Auth.KeysURL())
	}

	// Nested like BaseConfig.Auth, a setting can come from a file too.
	file := t.TempDir() + "/audience"
	if err := os.WriteFile(file, []byte("other-api\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OIDC_AUDIENCE_FILE", file)
	t.Setenv("OIDC_JWKS_URL", "http://hydra:4444/.well-known/jwks.json")
	if cfg, err = LoadConfig[BaseConfig](slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.Audience != "other-api" || cfg.Auth.KeysURL() != "http://hydra:4444/.well-known/jwks.json" {
		t.Errorf("from the environment: %+v", cfg.Auth)
	}
	if d := Describe(cfg); d["OIDC_AUDIENCE"] != "other-api" || d["OIDC_ISSUER"] != "http://localhost:4444/" {
		t.Errorf("Describe = %v, want the OIDC settings", d)
	}
}
