package deploy_test

import (
	"net/url"
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
	Ports       []string          `yaml:"ports"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

// variable is a compose interpolation: ${NAME}, ${NAME:-default} or ${NAME-default}.
var variable = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}`)

// defaults interpolates s as compose would in an empty environment.
func defaults(s string) string { return variable.ReplaceAllString(s, "$1") }

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
// fails: every service connects as its own broker and database user, with the password
// that broker-setup and the database init script were given, and no guest anywhere.
func TestComposeWiresEachServiceToItsOwnUsers(t *testing.T) {
	text, services := readCompose(t)
	for i, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") && strings.Contains(line, "guest") {
			t.Errorf("docker-compose.yml:%d uses guest", i+1)
		}
	}
	setup, db := services["broker-setup"].Environment, services["postgres"].Environment
	for _, name := range brokeraccess.Names() {
		svc, ok := services[name]
		if !ok {
			t.Errorf("service %s is not in docker-compose.yml", name)
			continue
		}
		upper := strings.ToUpper(name)
		amqpURL, err := url.Parse(defaults(svc.Environment["AMQP_URL"]))
		if err != nil || amqpURL.User.Username() != name {
			t.Errorf("%s: AMQP_URL %q does not use its own user", name, svc.Environment["AMQP_URL"])
		} else if pw, _ := amqpURL.User.Password(); pw != defaults(setup[upper+"_AMQP_PASSWORD"]) {
			t.Errorf("%s: AMQP_URL password %q, broker-setup has %q", name, pw, defaults(setup[upper+"_AMQP_PASSWORD"]))
		}
		dbURL, err := url.Parse(defaults(svc.Environment["DATABASE_URL"]))
		if err != nil || dbURL.User.Username() != name || dbURL.Path != "/"+name {
			t.Errorf("%s: DATABASE_URL %q does not use its own role and database", name, svc.Environment["DATABASE_URL"])
		} else if pw, _ := dbURL.User.Password(); pw != defaults(db[upper+"_DB_PASSWORD"]) {
			t.Errorf("%s: DATABASE_URL password %q, postgres has %q", name, pw, defaults(db[upper+"_DB_PASSWORD"]))
		}
		if want := []string{"CMD", "/" + name, "healthcheck"}; !slices.Equal(svc.Healthcheck.Test, want) {
			t.Errorf("%s: healthcheck %q, want %q", name, svc.Healthcheck.Test, want)
		}
	}
	if len(services["email"].Ports) > 0 {
		t.Error("email publishes a host port: --scale email=3 would fail")
	}
}

// TestComposePublishesOnLoopbackOnly: dev passwords must not be reachable from the network.
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
