# authstream developer entry points. The work is done by the go tool, per
# module: at a go.work root `./...` matches nothing, so targets loop over the
# modules that `go list -m` reports.

GO       ?= go
FUZZTIME ?= 30s
# Flags of the benchmark harness (tools/bench), e.g. -scenarios, -duration.
BENCH_ARGS ?=
# Modules whose tests exercise concurrency run under the race detector; the
# rest run without it to keep `make test` quick on small machines.
RACE_MODULES ?= libs/eventstore libs/telemetry libs/httpserver libs/authclient
# The binaries `make build` writes to ./bin.
BINARIES := services/authstream/cmd/authstream \
            services/command/cmd/authstream-command \
            services/projector/cmd/authstream-projector \
            services/query/cmd/authstream-query \
            services/dispatcher/cmd/authstream-dispatcher \
            services/authctl/cmd/authctl

MODULES = $(shell $(GO) list -m -f '{{.Dir}}')

# golangci-lint, pinned. It is installed once per machine through the Go module
# proxy under a versioned name beside the other Go tools (GOBIN, else
# GOPATH/bin), so every clone shares it and a version bump installs the new
# one; it is not put on PATH, nor taken from it.
GOLANGCI_LINT_VERSION := v2.15.0
GOTOOLS_BIN   := $(or $(shell $(GO) env GOBIN),$(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin)
GOLANGCI_LINT := $(GOTOOLS_BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
# Module folders `make lint` checks, relative to the root; every module by
# default, e.g. make lint LINT_MODULES="libs/authn services/projector".
LINT_MODULES ?= $(patsubst $(CURDIR)/%,%,$(MODULES))

.PHONY: run build test fmt-check vet lint fuzz bench tidy clean postgres chromium

## run: build and start the all-in-one binary (embedded NATS, the three services)
run: postgres build
	./bin/authstream

## build: compile every binary into ./bin
build:
	@mkdir -p bin
	$(GO) build -o bin/ $(addprefix ./,$(wildcard $(BINARIES)))

## test: gofmt check, golangci-lint, go vet and go test (seed corpora of fuzz targets included) in every module
test: postgres chromium fmt-check lint
	@failed=""; \
	for m in $(MODULES); do \
		rel=$${m#$(CURDIR)/}; race=""; \
		case " $(RACE_MODULES) " in *" $$rel "*) race="-race";; esac; \
		echo "== $$rel"; \
		(cd $$m && $(GO) vet ./... && $(GO) test -count=1 $$race ./...) || failed="$$failed $$rel"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi

## fmt-check: fail listing the Go files gofmt would change
fmt-check:
	@files=$$(gofmt -l $(MODULES) | sed "s|^$(CURDIR)/||"); \
	if [ -n "$$files" ]; then echo "gofmt needed on:"; echo "$$files"; exit 1; fi

## vet: go vet in every module
vet:
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

## lint: golangci-lint (config: .golangci.yml) in LINT_MODULES, default every module
# Runs from several clones of the repo on one machine wait for each other
# (golangci-lint holds a lock) instead of failing.
lint: $(GOLANGCI_LINT)
	@failed=""; \
	for rel in $(LINT_MODULES); do \
		echo "== $$rel"; \
		(cd $$rel && $(GOLANGCI_LINT) run --allow-serial-runners ./...) || failed="$$failed $$rel"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi

# The pinned linter: go install writes golangci-lint into a scratch folder,
# which is then moved to its versioned name, so an interrupted install leaves
# nothing that looks installed.
$(GOLANGCI_LINT):
	@echo "installing golangci-lint $(GOLANGCI_LINT_VERSION) into $(GOTOOLS_BIN)"
	@tmp=$$(mktemp -d); \
	GOBIN=$$tmp $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) && \
	mkdir -p $(GOTOOLS_BIN) && mv $$tmp/golangci-lint $@; \
	status=$$?; rm -rf $$tmp; exit $$status

## fuzz: run every Fuzz target for FUZZTIME (default 30s) each
fuzz:
	@FUZZTIME=$(FUZZTIME) scripts/fuzz $(MODULES)

## bench: start the platform in-process, load it scenario by scenario and print a table (docs/benchmarks.md);
##        one scenario: make bench BENCH_ARGS="-scenarios login -duration 30s"
bench: postgres
	cd tools/bench && $(GO) run ./cmd/bench $(BENCH_ARGS)

## tidy: go mod tidy in every module
tidy:
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy) || exit 1; done

## clean: remove built binaries and cached test results (keeps ./.data)
clean:
	rm -rf bin
	$(GO) clean -testcache

## postgres: make sure PostgreSQL accepts connections (idempotent)
postgres:
	@scripts/ensure-postgres

## chromium: make sure Debian's chromium is installed for the browser journeys
##           (idempotent; installs it as root). Without it the rest of the
##           suite still runs: the journeys skip, or fail when CI is set.
chromium:
	@scripts/ensure-chromium || echo "make: the browser journeys will skip without chromium (and fail with CI set)"
