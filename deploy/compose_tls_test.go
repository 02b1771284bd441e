package deploy_test

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/warrenhq/warren/deploy/internal/brokeraccess"
)

// tlsComposeService is what compose.tls.yml may set on a service, as docker-compose.yml
// writes it: compose_tls_test merges the two files the way Compose does for these keys.
type tlsComposeService struct {
	Command     []string          `yaml:"command"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	DependsOn   map[string]any    `yaml:"depends_on"`
	// Anything else the override sets: the merge below does not know it, so the test fails.
	Other map[string]any `yaml:",inline"`
}

func readTLSComposeFile(t *testing.T, path string) map[string]tlsComposeService {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]tlsComposeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f.Services
}

// mergedTLSCompose is docker-compose.yml with compose.tls.yml over it, merged as Compose
// (v1.29 and v2) merges these keys: command and entrypoint replaced, environment and
// depends_on merged by key, volumes by container path, ports added.
func mergedTLSCompose(t *testing.T) map[string]tlsComposeService {
	t.Helper()
	base := readTLSComposeFile(t, "../docker-compose.yml")
	over := readTLSComposeFile(t, "compose.tls.yml")
	for name, o := range over {
		if len(o.Other) > 0 {
			t.Fatalf("compose.tls.yml: %s sets %v, which this test does not know how to merge", name, slices.Collect(maps.Keys(o.Other)))
		}
		b, ok := base[name]
		if !ok {
			t.Fatalf("compose.tls.yml: %s is not a service of docker-compose.yml", name)
		}
		if o.Command != nil {
			b.Command = o.Command
		}
		if o.Entrypoint != nil {
			b.Entrypoint = o.Entrypoint
		}
		b.Environment = merged(b.Environment, o.Environment)
		b.DependsOn = merged(b.DependsOn, o.DependsOn)
		b.Ports = append(slices.Clone(b.Ports), o.Ports...)
		byTarget := map[string]string{}
		for _, v := range append(slices.Clone(b.Volumes), o.Volumes...) {
			byTarget[strings.Split(v, ":")[1]] = v
		}
		b.Volumes = slices.Sorted(maps.Values(byTarget))
		base[name] = b
	}
	return base
}

func merged[V any](a, b map[string]V) map[string]V {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]V{}
	}
	maps.Copy(out, b)
	return out
}

// mountedFile is the repository file that svc mounts at target, "" if none.
func mountedFile(svc tlsComposeService, target string) string {
	for _, v := range svc.Volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == target && strings.HasPrefix(parts[0], "./") {
			return strings.TrimPrefix(parts[0], "./deploy/")
		}
	}
	return ""
}

// mountsVolume reports whether svc mounts volume read-only at target.
func mountsVolume(svc tlsComposeService, volume, target string) bool {
	return slices.Contains(svc.Volumes, volume+":"+target+":ro")
}

// docker-compose.yml + compose.tls.yml: every server serves TLS only, with the files
// `secrets init --tls` writes into the volume it mounts, and every service asks for TLS
// and trusts the CA. (What secrets writes is TestSecretsInitTLS's.)
func TestComposeTLSOverride(t *testing.T) {
	services := mergedTLSCompose(t)
	const secretsDir = "/run/secrets/warren"

	if s := services["secrets"]; !slices.Contains(s.Command, "--tls") || !slices.Contains(s.Volumes, "ca-secrets:/secrets/ca") ||
		!slices.Contains(s.Volumes, "mailpit-secrets:/secrets/mailpit") {
		t.Errorf("secrets: command %v, volumes %v; want --tls, the CA's volume and mailpit's", s.Command, s.Volumes)
	}
	for name, svc := range services {
		for _, v := range svc.Volumes {
			if strings.HasPrefix(v, "ca-secrets:") && name != "secrets" {
				t.Errorf("%s mounts the CA's key (%s): only secrets may", name, v)
			}
			if strings.HasPrefix(v, "mailpit-secrets:") && name != "secrets" && name != "mailpit" {
				t.Errorf("%s mounts mailpit's key (%s)", name, v)
			}
		}
	}

	// RabbitMQ: the TLS listener, the plain one off, the files from infra-secrets.
	rabbit := services["rabbitmq"]
	conf := mountedFile(rabbit, "/etc/rabbitmq/conf.d/90-tls.conf")
	settings := rabbitConf(t, conf)
	for key, want := range map[string]string{
		"listeners.tcp":          "none",
		"listeners.ssl.default":  "5671",
		"ssl_options.certfile":   secretsDir + "/rabbitmq.crt",
		"ssl_options.keyfile":    secretsDir + "/rabbitmq.key",
		"ssl_options.cacertfile": secretsDir + "/ca.crt",
	} {
		if settings[key] != want {
			t.Errorf("rabbitmq %s: %s = %q, want %q", conf, key, settings[key], want)
		}
	}
	if !mountsVolume(rabbit, "infra-secrets", secretsDir) || !slices.Contains(rabbit.Ports, "127.0.0.1:${RABBITMQ_AMQPS_PORT:-5671}:5671") {
		t.Errorf("rabbitmq: volumes %v, ports %v; want infra-secrets and 5671 on loopback", rabbit.Volumes, rabbit.Ports)
	}

	// PostgreSQL: ssl on with the certificate, its key copied for the postgres user, and a
	// pg_hba that takes no session in clear over the network.
	pg := services["postgres"]
	args := strings.Join(pg.Command, " ")
	for _, want := range []string{"-c ssl=on", "-c ssl_cert_file=" + secretsDir + "/postgres.crt",
		"-c ssl_key_file=/var/lib/postgresql/tls/server.key", "-c hba_file=/etc/warren/pg_hba.conf"} {
		if !strings.Contains(args, want) {
			t.Errorf("postgres command %q lacks %q", args, want)
		}
	}
	if entry := strings.Join(pg.Entrypoint, " "); !strings.Contains(entry, "-m 0600 "+secretsDir+"/postgres.key /var/lib/postgresql/tls/server.key") ||
		!strings.Contains(entry, `exec docker-entrypoint.sh "$$@"`) {
		t.Errorf("postgres entrypoint %q: want the key copied private, then the image's entrypoint", entry)
	}
	hba := mountedFile(pg, "/etc/warren/pg_hba.conf")
	for _, line := range confLines(t, hba) {
		if f := strings.Fields(line); f[0] != "local" && f[0] != "hostssl" && !(f[0] == "hostnossl" && f[len(f)-1] == "reject") {
			t.Errorf("postgres %s: %q lets a session in without TLS", hba, line)
		}
	}
	if !mountsVolume(pg, "infra-secrets", secretsDir) {
		t.Errorf("postgres: volumes %v", pg.Volumes)
	}

	// Mailpit: STARTTLS required, with its certificate from its own volume.
	mp := services["mailpit"]
	if mp.Environment["MP_SMTP_REQUIRE_STARTTLS"] != "true" || mp.Environment["MP_SMTP_TLS_CERT"] != secretsDir+"/mailpit.crt" ||
		mp.Environment["MP_SMTP_TLS_KEY"] != secretsDir+"/mailpit.key" || !mountsVolume(mp, "mailpit-secrets", secretsDir) {
		t.Errorf("mailpit: environment %v, volumes %v", mp.Environment, mp.Volumes)
	}
	if _, ok := mp.DependsOn["secrets"]; !ok {
		t.Error("mailpit does not wait for secrets, which writes its certificate")
	}

	// The services: URLs from their own volume (amqps:// and verify-full, written by
	// secrets --tls), the CA from the same volume.
	for _, name := range brokeraccess.Names() {
		svc := services[name]
		if svc.Environment["AMQP_CA_FILE"] != secretsDir+"/ca.crt" || svc.Environment["AMQP_URL_FILE"] != secretsDir+"/amqp_url" ||
			svc.Environment["DATABASE_URL_FILE"] != secretsDir+"/database_url" || !mountsVolume(svc, name+"-secrets", secretsDir) {
			t.Errorf("%s: environment %v, volumes %v; want its URLs and the CA from its own secrets volume", name, svc.Environment, svc.Volumes)
		}
	}
	// Alertmanager: STARTTLS to Mailpit (alertmanager.tls.yml), the CA from its own volume.
	am := services["alertmanager"]
	if mountedFile(am, "/etc/alertmanager/alertmanager.yml") != "alertmanager/alertmanager.tls.yml" ||
		!mountsVolume(am, "alertmanager-secrets", secretsDir) {
		t.Errorf("alertmanager: volumes %v; want alertmanager.tls.yml and alertmanager-secrets", am.Volumes)
	}
	if _, ok := am.DependsOn["secrets"]; !ok || !slices.Contains(services["secrets"].Volumes, "alertmanager-secrets:/secrets/alertmanager") {
		t.Error("alertmanager does not wait for secrets, or secrets does not write alertmanager-secrets")
	}
	// The exporter: verify-full against the CA in its own volume, like the services.
	if uri := services["postgres-exporter"].Environment["DATA_SOURCE_URI"]; !strings.Contains(uri, "sslmode=verify-full") ||
		!strings.Contains(uri, "sslrootcert="+secretsDir+"/ca.crt") || !strings.HasPrefix(uri, "postgres:5432/") {
		t.Errorf("postgres-exporter: DATA_SOURCE_URI %q, want postgres:5432 with sslmode=verify-full and the CA", uri)
	}
	if e := services["email"].Environment; e["SMTP_TLS"] != "required" || e["SMTP_CA_FILE"] != secretsDir+"/ca.crt" || e["SMTP_ADDR"] != "mailpit:1025" {
		t.Errorf("email: SMTP settings %v; want STARTTLS required to mailpit, verified against the CA", e)
	}
}

// confLines returns the lines of deploy/<path> that are neither blank nor comments.
func confLines(t *testing.T, path string) []string {
	t.Helper()
	if path == "" {
		t.Fatal("file not mounted")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// rabbitConf reads a rabbitmq.conf-style file (key = value) into a map.
func rabbitConf(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range confLines(t, path) {
		k, v, _ := strings.Cut(line, "=")
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out
}
