package deploy_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/warrenhq/warren/deploy/internal/brokeraccess"
)

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	// Hardening (compose_hardening_test.go).
	ReadOnly    bool     `yaml:"read_only"`
	User        string   `yaml:"user"`
	CapDrop     []string `yaml:"cap_drop"`
	SecurityOpt []string `yaml:"security_opt"`
	MemLimit    string   `yaml:"mem_limit"`
	PidsLimit   int      `yaml:"pids_limit"`
	NetworkMode string   `yaml:"network_mode"`
	Logging     struct {
		Driver  string            `yaml:"driver"`
		Options map[string]string `yaml:"options"`
	} `yaml:"logging"`
}

func readCompose(t *testing.T) (string, map[string]composeService) {
	t.Helper()
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return string(b), f.Services
}

// TestComposeWiresEachServiceToItsOwnUsers checks what no container run shows until it
// fails: no password is written in the file, every service connects with its own URLs
// from its own secrets volume (written by `warrenctl secrets init`, whose test checks that
// they name the service's own broker user and database), no container but the
// infrastructure's sees another's secrets, and no guest anywhere.
func TestComposeWiresEachServiceToItsOwnUsers(t *testing.T) {
	text, services := readCompose(t)
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.Contains(line, "guest") {
			t.Errorf("docker-compose.yml:%d uses guest", i+1)
		}
		// A password may be passed on from the environment, never given a value here.
		if m := passwordValue.FindStringSubmatch(line); m != nil && !allowedPasswordValue.MatchString(m[1]) {
			t.Errorf("docker-compose.yml:%d writes a password: %s", i+1, strings.TrimSpace(line))
		}
	}
	const secretsDir = "/run/secrets/warren"
	infraMount := "infra-secrets:" + secretsDir + ":ro"
	for name, svc := range services {
		for _, v := range svc.Volumes {
			owner, shared := sharesSecretsOf[name]
			if strings.Contains(v, "-secrets:") && name != "secrets" && v != infraMount && v != name+"-secrets:"+secretsDir+":ro" &&
				(!shared || v != owner+"-secrets:"+secretsDir+":ro") {
				t.Errorf("%s mounts %q: only the service itself may see its secrets", name, v)
			}
		}
	}
	setup, db := services["broker-setup"].Environment, services["postgres"].Environment
	for _, name := range brokeraccess.Names() {
		svc, ok := services[name]
		if !ok {
			t.Errorf("service %s is not in docker-compose.yml", name)
			continue
		}
		if !slices.Contains(services["secrets"].Volumes, name+"-secrets:/secrets/"+name) {
			t.Errorf("secrets does not write %s's volume at /secrets/%s", name, name)
		}
		if got := svc.Volumes; !slices.Contains(got, name+"-secrets:"+secretsDir+":ro") {
			t.Errorf("%s: volumes %q, want its own secrets volume at %s, read-only", name, got, secretsDir)
		}
		if svc.Environment["AMQP_URL_FILE"] != secretsDir+"/amqp_url" || svc.Environment["DATABASE_URL_FILE"] != secretsDir+"/database_url" {
			t.Errorf("%s: AMQP_URL_FILE %q and DATABASE_URL_FILE %q, want the URLs in %s", name,
				svc.Environment["AMQP_URL_FILE"], svc.Environment["DATABASE_URL_FILE"], secretsDir)
		}
		if svc.Environment["AMQP_URL"] != "" || svc.Environment["DATABASE_URL"] != "" {
			t.Errorf("%s: AMQP_URL or DATABASE_URL set besides their files", name)
		}
		upper := strings.ToUpper(name)
		if got, want := setup[upper+"_AMQP_PASSWORD_FILE"], secretsDir+"/"+name+"_amqp_password"; got != want {
			t.Errorf("broker-setup: %s_AMQP_PASSWORD_FILE %q, want %q", upper, got, want)
		}
		if got, want := db[upper+"_DB_PASSWORD_FILE"], secretsDir+"/"+name+"_db_password"; got != want {
			t.Errorf("postgres: %s_DB_PASSWORD_FILE %q, want %q", upper, got, want)
		}
		if want := []string{"CMD", "/" + name, "healthcheck"}; !slices.Equal(svc.Healthcheck.Test, want) {
			t.Errorf("%s: healthcheck %q, want %q", name, svc.Healthcheck.Test, want)
		}
	}
	if len(services["email"].Ports) > 0 {
		t.Error("email publishes a host port: --scale email=3 would fail")
	}
}

// sharesSecretsOf lists the containers that read another's secrets volume, and whose.
var sharesSecretsOf = map[string]string{
	"hydra-migrate": "hydra", // Hydra's own migrations, with its database URL
	"token":         "login", // the demo users' passwords, to log in as one of them
	"load":          "login", // the load-test customers' passwords, to log in as them
	"live":          "login", // the demo customer's password, to place orders as her
}

var (
	// passwordValue is a variable whose name ends in PASSWORD (or PASS) and its value.
	passwordValue = regexp.MustCompile(`^\s*[A-Z_]*PASS(?:WORD)?:\s*(.*)$`)
	// allowedPasswordValue is passing a variable on unchanged: ${NAME:-} or ${NAME}.
	allowedPasswordValue = regexp.MustCompile(`^\$\{[A-Z_]+(?::-)?\}$`)
)

// TestComposePublishesOnLoopbackOnly: nothing of the stack is reachable from the network.
func TestComposePublishesOnLoopbackOnly(t *testing.T) {
	_, services := readCompose(t)
	for name, svc := range services {
		for _, p := range svc.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %q on every interface", name, p)
			}
		}
	}
}

// TestComposeRotatesEveryLog: a container whose log is never rotated fills the disk of a
// long-running host (json-file keeps everything by default), so every service, one-shots
// and infrastructure included, has the json-file driver with a size and a file count.
func TestComposeRotatesEveryLog(t *testing.T) {
	_, services := readCompose(t)
	for name, svc := range services {
		l := svc.Logging
		if l.Driver != "json-file" || l.Options["max-size"] == "" || l.Options["max-file"] == "" {
			t.Errorf("%s: logging %+v, want the json-file driver with max-size and max-file (logging: *logging)", name, l)
		}
	}
	if len(services) == 0 {
		t.Error("no service read from docker-compose.yml")
	}
}

// TestComposeWiresTheOIDCProvider: Hydra's issuer is the one the services and the token
// tool expect, host-facing (the browser is redirected to it); the services fetch its keys
// inside the network; its admin API, which has no authentication, is never published;
// its secrets and the demo users come from the volumes secrets writes.
func TestComposeWiresTheOIDCProvider(t *testing.T) {
	_, services := readCompose(t)
	hydra := services["hydra"]
	issuer := defaults(hydra.Environment["URLS_SELF_ISSUER"])
	if issuer != "http://localhost:4444/" {
		t.Errorf("hydra: URLS_SELF_ISSUER %q, want http://localhost:4444/", issuer)
	}
	if !slices.Equal(hydra.Ports, []string{"127.0.0.1:${HYDRA_PUBLIC_PORT:-4444}:4444"}) {
		t.Errorf("hydra publishes %q, want its public port only (the admin API must stay inside)", hydra.Ports)
	}
	for _, name := range append(brokeraccess.Names(), "token") {
		env := services[name].Environment
		if got := defaults(env["OIDC_ISSUER"]); got != issuer {
			t.Errorf("%s: OIDC_ISSUER %q, want Hydra's issuer %q", name, got, issuer)
		}
	}
	for _, name := range brokeraccess.Names() {
		if got := services[name].Environment["OIDC_JWKS_URL"]; got != "http://hydra:4444/.well-known/jwks.json" {
			t.Errorf("%s: OIDC_JWKS_URL %q, want Hydra's inside the network", name, got)
		}
	}
	for _, name := range []string{"hydra", "hydra-migrate"} {
		if !slices.Contains(services[name].Volumes, "hydra-secrets:/run/secrets/warren:ro") {
			t.Errorf("%s: volumes %q, want hydra-secrets read-only", name, services[name].Volumes)
		}
	}
	for _, name := range []string{"login", "token"} {
		svc := services[name]
		if !slices.Contains(svc.Volumes, "login-secrets:/run/secrets/warren:ro") || svc.Environment["USERS_FILE"] != "/run/secrets/warren/users.json" {
			t.Errorf("%s: volumes %q, USERS_FILE %q: want the users file of login-secrets", name, svc.Volumes, svc.Environment["USERS_FILE"])
		}
	}
	for _, v := range []string{"hydra-secrets:/secrets/hydra", "login-secrets:/secrets/login"} {
		if !slices.Contains(services["secrets"].Volumes, v) {
			t.Errorf("secrets does not write %s", v)
		}
	}
	if got, want := services["postgres"].Environment["HYDRA_DB_PASSWORD_FILE"], "/run/secrets/warren/hydra_db_password"; got != want {
		t.Errorf("postgres: HYDRA_DB_PASSWORD_FILE %q, want %q", got, want)
	}
}

// defaults interpolates ${NAME:-default} as compose does in an empty environment.
func defaults(s string) string {
	return regexp.MustCompile(`\$\{[A-Z_]+:-([^}]*)\}`).ReplaceAllString(s, "$1")
}

// TestInitScriptCreatesEveryDatabase keeps the database init script's list of services in
// step with the table of services.
func TestInitScriptCreatesEveryDatabase(t *testing.T) {
	b, err := os.ReadFile("postgres/init-databases.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^for service in ([a-z ]+); do$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("init-databases.sh: no `for service in ...; do` line")
	}
	if got := strings.Fields(string(m[1])); !slices.Equal(got, brokeraccess.Names()) {
		t.Errorf("init-databases.sh creates %v, the services are %v", got, brokeraccess.Names())
	}
}
