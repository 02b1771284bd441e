# Warren's entry points. `make test` is the one CI runs (through .ci/run); on a machine
# with Docker and Go it needs nothing else: `make images` provides every image first.

SERVICES   := order inventory email sms analytics
PKGS       := github.com/warrenhq/warren/...
# Image names: official by default, overridable (deploy/images/README.md).
export RABBITMQ_IMAGE ?= rabbitmq:4.0-management
export POSTGRES_IMAGE ?= postgres:17
export GO_IMAGE       ?= golang:1.27
# Metrics and alerts (docker-compose.yml, e2e/compose); Jaeger's, Mailpit's and Hydra's
# defaults live in deploy/images/build.sh and the compose file.
export PROMETHEUS_IMAGE        ?= prom/prometheus:v2.53.3
export ALERTMANAGER_IMAGE      ?= prom/alertmanager:v0.28.1
export POSTGRES_EXPORTER_IMAGE ?= prometheuscommunity/postgres-exporter:v0.17.1
# The Go every build and test uses, whatever Go the machine has installed: 1.27.3 fixes
# standard-library vulnerabilities that make vulncheck finds called in go1.26.8
# (crypto/x509, net/http, crypto/tls among them). The go command fetches it from the
# module proxy once (76 MB). The golang stand-in image is built from it too.
export GOTOOLCHAIN    ?= go1.27.3
# Tag of the service images built from services/*/Dockerfile (docker-compose.yml reads it too).
export WARREN_TAG ?= dev
# Compose v2 where installed, else the v1 docker-compose (the file works with both).
COMPOSE    ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

# testcontainers-go: Ryuk (the reaper) is an image of its own that cannot be pulled
# everywhere; testkit removes its containers itself.
export TESTCONTAINERS_RYUK_DISABLED ?= true
# Where the tests run inside a container that also runs the Docker daemon (/.dockerenv),
# testcontainers-go would look for published ports on the default gateway; they are on
# localhost. See shared/testkit.
ifneq ($(wildcard /.dockerenv),)
ifeq ($(DOCKER_HOST),)
export TESTCONTAINERS_HOST_OVERRIDE ?= localhost
endif
endif

# Test runs are bounded: 2 packages at a time (each starts its own broker and database).
GOTEST := go test -p 2 -timeout 20m
# The packages whose goroutines share state (connections, channels, the outbox relay): make
# test runs them under the race detector instead of without it. -race needs cgo and a C
# compiler (gcc, libc6-dev; .ci/run installs them).
RACE_PKGS := github.com/warrenhq/warren/shared/messaging github.com/warrenhq/warren/shared/outbox

# Each fuzz target, as package:Target, and how long `make fuzz` runs each.
FUZZ_TARGETS := ./shared/events:FuzzDecode ./services/order/internal/orders:FuzzPlaceRequest ./services/email/internal/mailing:FuzzCompose
# A count, not a duration: with a duration, a worker still busy when the time is up makes
# go test fail with "context deadline exceeded" on a loaded machine.
FUZZTIME     ?= 30000x

.PHONY: chaos bench e2e up down load help images third-party-images go-image service-images test unit integration vet fmt tidy definitions dashboards fuzz race vulncheck

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

up: images ## run the whole system with docker compose (deploy/README.md)
	WARREN_TAG=$(WARREN_TAG) $(COMPOSE) up -d

down: ## stop it and remove its containers, network and volumes
	$(COMPOSE) down -v

# The load generator's rate and size (deploy/cmd/warren-load lists its other LOAD_ settings,
# which pass through the environment as these do): make load LOAD_RATE=50 LOAD_COUNT=3000
export LOAD_RATE  ?= 10
export LOAD_COUNT ?= 600
load: images ## run the load generator against the compose stack (starting it if needed): LOAD_RATE orders/s until LOAD_COUNT orders; exits non-zero when the figures do not add up
	WARREN_TAG=$(WARREN_TAG) $(COMPOSE) --profile load run --rm load

# The Go builder first (the service images need only it), then the other third-party
# images and Warren's side by side: the stand-ins' builds wait on downloads and links
# that Warren's compile can use the cores for.
images: ## provide every image: local, pulled, or built here
	deploy/images/build.sh golang
	$(MAKE) --no-print-directory -j2 third-party-images service-images

third-party-images: ## RabbitMQ, PostgreSQL, Jaeger, Mailpit, Hydra, Prometheus, Alertmanager, postgres-exporter and the Go builder (official names; stand-ins built where no registry answers)
	deploy/images/build.sh

go-image: ## the Go builder image (GO_IMAGE) the Dockerfiles build in
	deploy/images/build.sh golang

service-images: go-image ## build warren/<service>:$(WARREN_TAG) from each service's Dockerfile, and warren/warrenctl, warren/warren-login, warren/warren-load and warren/warren-live
	@for s in $(SERVICES); do \
		if [ -f services/$$s/Dockerfile ]; then \
			echo "== warren/$$s:$(WARREN_TAG)"; \
			docker build -q --build-arg GO_IMAGE=$(GO_IMAGE) -f services/$$s/Dockerfile -t warren/$$s:$(WARREN_TAG) . || exit 1; \
		fi; \
	done
	@echo "== warren/warrenctl:$(WARREN_TAG)"
	docker build -q --build-arg GO_IMAGE=$(GO_IMAGE) -f deploy/cmd/warrenctl/Dockerfile -t warren/warrenctl:$(WARREN_TAG) .
	@echo "== warren/warren-login:$(WARREN_TAG)"
	docker build -q --build-arg GO_IMAGE=$(GO_IMAGE) -f deploy/cmd/warren-login/Dockerfile -t warren/warren-login:$(WARREN_TAG) .
	@echo "== warren/warren-load:$(WARREN_TAG)"
	docker build -q --build-arg GO_IMAGE=$(GO_IMAGE) -f deploy/cmd/warren-load/Dockerfile -t warren/warren-load:$(WARREN_TAG) .
	@echo "== warren/warren-live:$(WARREN_TAG)"
	docker build -q --build-arg GO_IMAGE=$(GO_IMAGE) -f deploy/cmd/warren-live/Dockerfile -t warren/warren-live:$(WARREN_TAG) .

test: images vet ## everything: unit, integration and end-to-end tests in containers (RACE_PKGS under -race), a short fuzz run, govulncheck, the chaos scenarios
	$(GOTEST) $$(go list $(PKGS) | grep -vxF $(addprefix -e ,$(RACE_PKGS)))
	$(MAKE) race
	$(MAKE) fuzz
	$(MAKE) vulncheck
	$(CHAOS_TEST)

race: ## the concurrent packages (RACE_PKGS) under the race detector, against real containers
	CGO_ENABLED=1 $(GOTEST) -race $(RACE_PKGS)

vulncheck: ## govulncheck on every module against an offline database built from golang.org/x/vulndb (deploy/vulncheck)
	deploy/vulncheck/check.sh

e2e: images ## the end-to-end suite alone: every service in containers, then docker-compose.yml up and down
	cd e2e && go test -count=1 -timeout 20m ./...

# The chaos scenarios run one at a time (each starts a whole system) and print their figures.
CHAOS_TEST := cd e2e && WARREN_CHAOS=1 go test -count=1 -v -timeout 40m ./chaos

chaos: images ## chaos scenarios alone: a system each, 1,200 orders, one fault, full reconciliation, a line of figures each (~7 min)
	$(CHAOS_TEST)

# Orders per round of the messaging layer's benchmark, which runs 5 rounds of each side.
BENCHTIME ?= 5000x
bench: third-party-images ## the messaging layer vs raw amqp091 (median of 5 alternating rounds, same broker), then the whole flow over HTTP (e2e/flowbench); about 3 min; tables, then one JSON line
	@go test -run '^$$' -bench 'FanoutRatio|arshal' -benchtime $(BENCHTIME) -benchmem ./shared/messaging | tee bench.out | grep -E '^Benchmark|round [0-9]'
	@cd e2e && go test -run '^$$' -bench Flow -benchtime 1x -timeout 20m ./flowbench | tee -a ../bench.out | grep -vE '^(goos|goarch|pkg|cpu):|^(PASS|ok )'
	@awk 'function field(unit,  i) {for (i = 1; i < NF; i++) if ($$(i+1) == unit) return $$i} \
	      function fmt(f, v) {return v == "" ? "n/a" : sprintf(f, v)} \
	      function json(f, v) {return v == "" ? "null" : sprintf(f, v)} \
	      /^BenchmarkFanoutRatio/ {raw = field("raw_orders/s"); layer = field("layer_orders/s"); ratio = field("layer_ratio")} \
	      /^BenchmarkFlow/ {flow = field("orders/s"); p50 = field("p50_ms"); p95 = field("p95_ms"); p99 = field("p99_ms"); cpu = field("cpu_ms/order"); \
	                        rt = field("db_round_trips/order"); tx = field("db_transactions/order"); st = field("db_statements/order"); \
	                        dl = field("deliveries/order"); sp = field("spans/order"); dbsp = field("db_spans/order")} \
	      /^database settings/ {for (i = 1; i <= NF; i++) {if ($$i ~ /^fsync=/) fsync = substr($$i, 7); if ($$i ~ /^synchronous_commit=/) sc = substr($$i, 20)}} \
	      END { if (raw == "" || layer == "" || flow == "") exit 1; \
	            printf "\n%-38s %10.0f orders/s  (median of the rounds)\n", "baseline (raw amqp091-go):", raw; \
	            printf "%-38s %10.0f orders/s  (%.3fx, the rounds'"'"' median ratio)\n", "messaging layer:", layer, ratio; \
	            printf "%-38s %10.1f orders/s  (%.4fx)\n", "whole flow (HTTP to every consumer):", flow, flow/raw; \
	            printf "%-38s p50 %.1f ms  p95 %.1f ms  p99 %.1f ms\n", "latency at half the flow rate:", p50, p95, p99; \
	            printf "%-38s %10.1f ms (services, broker, database)\n", "Warren CPU per order at full rate:", cpu; \
	            printf "%-38s %s round trips, %s transactions, %s statements (fsync=%s, synchronous_commit=%s)\n", "database per order (all services):", \
	                   fmt("%.1f", rt), fmt("%.1f", tx), fmt("%.1f", st), fsync == "" ? "n/a" : fsync, sc == "" ? "n/a" : sc; \
	            printf "%-38s %s deliveries, %s spans (%s of them database spans)\n", "broker and tracing per order:", fmt("%.2f", dl), fmt("%.1f", sp), fmt("%.1f", dbsp); \
	            printf "{\"baseline_orders_per_s\": %.0f, \"layer_orders_per_s\": %.0f, \"layer_ratio\": %.3f, \"flow_orders_per_s\": %.1f, \"flow_ratio\": %.4f, \"p50_ms\": %.1f, \"p95_ms\": %.1f, \"p99_ms\": %.1f, \"cpu_ms_per_order\": %s, \"db_round_trips_per_order\": %s, \"db_transactions_per_order\": %s, \"db_statements_per_order\": %s, \"deliveries_per_order\": %s, \"spans_per_order\": %s, \"db_spans_per_order\": %s, \"fsync\": %s}\n", \
	                   raw, layer, ratio, flow, flow/raw, p50, p95, p99, json("%.2f", cpu), json("%.1f", rt), json("%.2f", tx), json("%.1f", st), \
	                   json("%.2f", dl), json("%.1f", sp), json("%.1f", dbsp), fsync == "" ? "null" : "\"" fsync "\"" }' bench.out

unit: ## fast tests only: no Docker needed
	go test -short $(PKGS)

integration: third-party-images ## tests against real containers, without rebuilding service images
	$(GOTEST) $(PKGS)

fuzz: ## run every fuzz target for FUZZTIME (their seed corpora also run in every go test)
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== fuzz $$name in $$pkg for $(FUZZTIME)"; \
		go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

vet: ## go vet, gofmt, and every module tidy and buildable alone (as its Docker build is)
	go vet $(PKGS)
	@for m in shared e2e deploy $(addprefix services/,$(SERVICES)); do \
		(cd $$m && GOWORK=off go mod tidy -diff >/dev/null && GOWORK=off go build ./...) || { echo "$$m: run make tidy"; exit 1; }; \
	done
	@out=$$(gofmt -l shared services e2e deploy); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt: ## gofmt every module
	gofmt -w shared services e2e deploy

tidy: ## go mod tidy in every module
	@for m in shared e2e deploy $(addprefix services/,$(SERVICES)); do (cd $$m && GOWORK=off go mod tidy) || exit 1; done

definitions: ## regenerate deploy/rabbitmq/definitions.json from the topology in shared/events
	cd shared && go test ./events -run TestDefinitionsFileMatchesTopology -update

dashboards: ## regenerate deploy/grafana/dashboards/*.json from the code in deploy/internal/dashboards
	cd deploy && go test -count=1 ./internal/dashboards -run TestDashboardFilesAreCurrent -update
