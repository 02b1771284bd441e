package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// DefaultMailpitImage is the mail catcher the compose stack and the e2e suite run.
const DefaultMailpitImage = "axllent/mailpit:v1.33.1"

// MailpitOptions configure OwnMailpit. The zero value is a plain catcher: no STARTTLS.
type MailpitOptions struct {
	// CertPEM and KeyPEM, when set, make it offer STARTTLS with that certificate.
	CertPEM, KeyPEM []byte
	// RequireSTARTTLS makes it refuse mail on a session not upgraded with STARTTLS.
	RequireSTARTTLS bool
}

// Mailpit is a mail catcher for one test.
type Mailpit struct {
	// SMTPAddr is its SMTP listener, localhost:port.
	SMTPAddr string
	// API is the base URL of its HTTP API.
	API string
}

// OwnMailpit starts a Mailpit (MAILPIT_IMAGE, default DefaultMailpitImage) for t alone and
// removes it when t ends. It skips the test under -short.
func OwnMailpit(t testing.TB, opts MailpitOptions) *Mailpit {
	t.Helper()
	Integration(t)
	env := map[string]string{}
	var files []testcontainers.ContainerFile
	if opts.CertPEM != nil {
		// The image is FROM scratch: /tmp is the one directory it is sure to have.
		env["MP_SMTP_TLS_CERT"], env["MP_SMTP_TLS_KEY"] = "/tmp/smtp.crt", "/tmp/smtp.key"
		files = append(files,
			testcontainers.ContainerFile{Reader: bytes.NewReader(opts.CertPEM), ContainerFilePath: "/tmp/smtp.crt", FileMode: 0o644},
			testcontainers.ContainerFile{Reader: bytes.NewReader(opts.KeyPEM), ContainerFilePath: "/tmp/smtp.key", FileMode: 0o600})
	}
	if opts.RequireSTARTTLS {
		env["MP_SMTP_REQUIRE_STARTTLS"] = "true"
	}
	ctx := context.Background()
	c, err := testcontainers.Run(ctx, envOr("MAILPIT_IMAGE", DefaultMailpitImage),
		testcontainers.WithEnv(env),
		testcontainers.WithFiles(files...),
		testcontainers.WithExposedPorts("1025/tcp", "8025/tcp"),
		testcontainers.WithWaitStrategyAndDeadline(time.Minute,
			wait.ForHTTP("/readyz").WithPort("8025/tcp"), wait.ForListeningPort("1025/tcp")),
	)
	if c != nil {
		t.Cleanup(func() { _ = c.Terminate(context.Background()) })
	}
	if err != nil {
		t.Fatalf("start mailpit: %v", err)
	}
	smtp, err := c.PortEndpoint(ctx, "1025/tcp", "")
	if err != nil {
		t.Fatal(err)
	}
	api, err := c.PortEndpoint(ctx, "8025/tcp", "http")
	if err != nil {
		t.Fatal(err)
	}
	return &Mailpit{SMTPAddr: smtp, API: api}
}

// Subjects returns the subjects of the mails it caught for addr.
func (m *Mailpit) Subjects(t testing.TB, addr string) []string {
	t.Helper()
	resp, err := http.Get(m.API + "/api/v1/search?query=" + url.QueryEscape(fmt.Sprintf("to:%q", addr)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Messages []struct {
			Subject string `json:"Subject"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit search: %s %v", resp.Status, err)
	}
	var subjects []string
	for _, m := range out.Messages {
		subjects = append(subjects, m.Subject)
	}
	return subjects
}
