# Warren's entry points. `make test` is the one CI runs (through .ci/run); on a machine
# with Docker and Go it needs nothing else: `make images` provides every image first.

SERVICES   := order inventory email sms analytics
PKGS       := github.com/warrenhq/warren/...
# Image names: official by default, overridable (deploy/images/README.md).
export RABBITMQ_IMAGE ?= rabbitmq:4.0-management
export POSTGRES_IMAGE ?= postgres:17
export GO_IMAGE       ?= golang:1.26
# Tag of the service images built from services/*/Dockerfile.
IMAGE_TAG  ?= dev

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

# Each fuzz target, as package:Target, and how long `make fuzz` runs each.
FUZZ_TARGETS := ./shared/events:FuzzDecode ./services/order/internal/orders:FuzzPlaceRequest
FUZZTIME     ?= 10s

.PHONY: help images third-party-images service-images test unit integration vet fmt tidy definitions fuzz

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

images: third-party-images service-images ## provide every image: local, pulled, or built here

third-party-images: ## RabbitMQ, PostgreSQL and the Go builder (official names; stand-ins built where no registry answers)
	deploy/images/build.sh

service-images: third-party-images ## build warren/<service>:$(IMAGE_TAG) from each service's Dockerfile
	@for s in $(SERVICES); do \
		if [ -f services/$$s/Dockerfile ]; then \
			echo "== warren/$$s:$(IMAGE_TAG)"; \
			docker build -q --build-arg GO_IMAGE=$(GO_IMAGE) -f services/$$s/Dockerfile -t warren/$$s:$(IMAGE_TAG) . || exit 1; \
		fi; \
	done

test: images vet ## everything: unit and integration tests against real RabbitMQ and PostgreSQL containers, a short fuzz run
	$(GOTEST) $(PKGS)
	$(MAKE) fuzz

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

vet: ## go vet and gofmt on every module
	go vet $(PKGS)
	@out=$$(gofmt -l shared services e2e); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt: ## gofmt every module
	gofmt -w shared services e2e

tidy: ## go mod tidy in every module
	@for m in shared e2e $(addprefix services/,$(SERVICES)); do (cd $$m && GOWORK=off go mod tidy) || exit 1; done

definitions: ## regenerate deploy/rabbitmq/definitions.json from the topology in shared/events
	cd shared && go test ./events -run TestDefinitionsFileMatchesTopology -update
