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
			if strings.Contains(v, "-secrets:") && name != "secrets" && v != infraMount && v != name+"-secrets:"+secretsDir+":ro" {
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
