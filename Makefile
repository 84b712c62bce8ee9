# eventsink — make targets. `make help` lists them.
#
# Deno is pinned. A `deno` on PATH is used only if it is exactly that version; otherwise the pinned
# one is installed from the npm registry into .tools/ (ignored by git; never a package.json at the root,
# which would change how Deno resolves modules).

DENO_VERSION := 2.9.6
LOCAL_DENO := .tools/node_modules/deno/deno
DENO := $(shell command -v deno >/dev/null 2>&1 && deno --version 2>/dev/null | head -n1 | grep -qx "deno $(DENO_VERSION) .*" && command -v deno || echo $(LOCAL_DENO))

# test, check, demo and eventstore are deno.json tasks (`deno task test` works too, with the pinned Deno).
# The permission set, one flag a line with its reason: the same for `make run`, the binary and the tests.
PERMISSIONS := $(shell grep -v '^\#' eventsink.permissions)
ARGS ?=

# The binary is compiled from a staging copy of the source whose src/build_stamp.ts holds what
# `git describe` says, so that `eventsink --version` names what it was built from (no tracked file changes):
# on a release tag vMAJOR.MINOR.PATCH exactly MAJOR.MINOR.PATCH (src/version.ts). Only v… tags count.
STAGE ?= dist/stage
GIT_DESCRIBE := $(shell git describe --tags --match 'v[0-9]*' --always --dirty 2>/dev/null)

# The platform `make build` compiles for, as deno compile names it (x86_64-unknown-linux-gnu,
# aarch64-unknown-linux-gnu); empty: this machine's. A release archive is named for its first word.
TARGET ?=
ARCH := $(if $(TARGET),$(firstword $(subst -, ,$(TARGET))),$(shell uname -m))
# What `make release-archive` packs, and where the archive goes.
BINARY ?= dist/eventsink
RELEASE_DIR ?= dist

.PHONY: help toolchain test check fmt demo eventstore run stage build release-archive bench clean

help:
	@echo "make demo        start a local broker and EventStore stand-in, forward the example messages, show the result"
	@echo "make test        unit and integration tests against a real Kafka broker (fetched with Maven)"
	@echo "make check       formatting, lint and type check"
	@echo "make run ARGS=…  run eventsink from source with its permission set"
	@echo "make eventstore  run the EventStore stand-in on 127.0.0.1:8080 (ARGS=… for its flags)"
	@echo "make build       compile dist/eventsink (needs Deno's runtime 'denort': online, or DENORT_BIN);"
	@echo "                 TARGET=aarch64-unknown-linux-gnu (or x86_64-…) for another platform than this one"
	@echo "make release-archive  dist/eventsink-<version>-linux-<arch>.tar.gz of dist/eventsink (or BINARY=…),"
	@echo "                 deploy/, README.md, LICENSE and CHANGELOG.md, as a release ships it"
	@echo "make bench       throughput, latency and memory vs ceilings and a naive sink (ARGS=--quick for a fast look)"

toolchain: $(DENO)

$(LOCAL_DENO):
	@command -v npm >/dev/null || { echo "make: npm is needed to install Deno $(DENO_VERSION) into .tools/" >&2; exit 1; }
	npm install --prefix .tools --no-save --no-audit --no-fund deno@$(DENO_VERSION)
	@$(LOCAL_DENO) --version | head -n1

test: toolchain
	$(DENO) task test $(ARGS)

check: toolchain
	$(DENO) task check

fmt: toolchain
	$(DENO) fmt

demo: toolchain
	$(DENO) task demo

eventstore: toolchain
	$(DENO) task eventstore $(ARGS)

run: toolchain
	$(DENO) run --frozen $(PERMISSIONS) main.ts $(ARGS)

stage:
	@rm -rf $(STAGE) && mkdir -p $(STAGE)
	@cp -R main.ts deno.json deno.lock src $(STAGE)/
	@printf '/** Written by make stage: `git describe` at build time. */\nexport const BUILD_DESCRIBE: string | undefined = %s;\n' \
	  '$(if $(GIT_DESCRIBE),"$(GIT_DESCRIBE)",undefined)' >$(STAGE)/src/build_stamp.ts

# deno compile downloads its runtime (denort) unless DENORT_BIN names one; offline, say so plainly.
build: toolchain stage
	@mkdir -p dist
	@if [ -n "$$DENORT_BIN" ] && [ ! -f "$$DENORT_BIN" ]; then \
	  echo "make build: DENORT_BIN=$$DENORT_BIN does not exist" >&2; exit 1; fi
	@if $(DENO) compile --frozen --config $(STAGE)/deno.json $(PERMISSIONS) $(if $(TARGET),--target $(TARGET)) \
	    --output dist/eventsink $(STAGE)/main.ts >dist/compile.log 2>&1; then \
	  echo "built dist/eventsink$(if $(TARGET), for $(TARGET))"; \
	else \
	  cat dist/compile.log >&2; \
	  echo "" >&2; \
	  echo "make build: deno compile failed (above). If it could not get Deno's runtime 'denort' $(DENO_VERSION):" >&2; \
	  echo "  it downloads it from dl.deno.land unless DENORT_BIN names a local copy. On a machine without" >&2; \
	  echo "  that access, fetch denort-$(or $(TARGET),$(ARCH)-unknown-linux-gnu).zip of Deno $(DENO_VERSION) elsewhere, unzip it," >&2; \
	  echo "  and run: make build DENORT_BIN=/path/to/denort" >&2; \
	  exit 1; \
	fi

# The archive a release ships for one architecture, named for the version the staged source reports (the
# version the binary reports when both come from the same checkout), with a checksum of the binary that
# deploy/install.sh checks. BINARY=… packs another file (the tests pack a stand-in).
release-archive: toolchain stage
	@test -f "$(BINARY)" || { echo "make release-archive: no $(BINARY): run make build, or give BINARY=…" >&2; exit 1; }
	@version=$$($(DENO) run --frozen --config $(STAGE)/deno.json $(PERMISSIONS) $(STAGE)/main.ts --version \
	    | sed -n '1s/^eventsink //p') && test -n "$$version" && \
	  name=eventsink-$$version-linux-$(ARCH) && tree=$(RELEASE_DIR)/$$name && \
	  rm -rf "$$tree" && mkdir -p "$$tree/deploy" && \
	  install -m 0755 "$(BINARY)" "$$tree/eventsink" && \
	  install -m 0644 deploy/eventsink.service deploy/eventsink.env deploy/eventsink-alerts.yml "$$tree/deploy/" && \
	  install -m 0755 deploy/install.sh "$$tree/deploy/" && \
	  install -m 0644 README.md LICENSE CHANGELOG.md "$$tree/" && \
	  (cd "$$tree" && sha256sum eventsink >eventsink.sha256) && \
	  tar -C $(RELEASE_DIR) --owner=0 --group=0 --numeric-owner --sort=name -czf $(RELEASE_DIR)/$$name.tar.gz $$name && \
	  rm -rf "$$tree" && \
	  echo "$(RELEASE_DIR)/$$name.tar.gz"

# Not part of `make test`: about 80 minutes on 2 cores (ARGS=--quick: about 5), and the first time about 2 more
# to build Benthos (needs Go; skipped without it). With Go it also builds the lean EventStore it measures
# against (bench/leanstore/, seconds); without Go it falls back to bench/store_host.ts. bench/run.ts --help lists ARGS.
bench: toolchain
	$(DENO) run --frozen --allow-all bench/run.ts $(ARGS)

clean:
	rm -rf dist .cache
