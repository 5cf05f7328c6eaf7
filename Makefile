# Energon: the two commands a new user types.
#   make run    set up, build (release), and run the main job
#   make test   set up and run every test
SHELL := /bin/bash
SWIFT ?= swift
APT_PACKAGES := libopenblas-dev pkg-config
PY_PACKAGES := gguf numpy

.PHONY: setup build run test bench clean

# Installs what is missing, idempotently: Debian packages (root or sudo) and Python packages
# used by the fixture scripts and benchmarks.
setup:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "Swift 6.1 or newer is required (https://swift.org/install)"; exit 1; }

build: setup
	$(SWIFT) build -c release --product energon

run: build
	.build/release/energon --help

test: setup
	$(SWIFT) build -c release --build-tests
	$(SWIFT) test -c release --skip-build

bench: build
	.build/release/energon bench-kernels

clean:
	rm -rf .build
