package service

import (
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
