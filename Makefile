# Two entry points, both safe on a fresh Debian 12 machine (run as root):
#   make lab   - build or reuse the mirror, boot a local lab node, provision it, check it
#   make test  - the whole test suite: unit, lint, and real nodes (molecule + pytest), the
#                control plane's part included
#   make check - the fast lane alone: unit and lint tests, no root, no nodes
#   make test-vm - opt-in, slow: the laptop path and a classroom VM proven in real VMs
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
HOST_PACKAGES := systemd-container debootstrap libseccomp-dev pkg-config gcc libc6-dev \
	busybox-static nginx-light iproute2 openssh-client curl
# Only for the tests: the class report page is opened in a real headless browser.
TEST_PACKAGES := chromium chromium-driver
# Only for `make test-vm`: real VMs (KVM where it works, software emulation otherwise).
VM_PACKAGES := qemu-system-x86 qemu-utils
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: lab test test-vm check host-packages venv down clean

lab: host-packages venv
	$(BIN)/hardway up

test: host-packages venv
	@$(MAKE) --no-print-directory host-packages HOST_PACKAGES="$(TEST_PACKAGES)"
	$(BIN)/pytest

test-vm: host-packages venv
	@$(MAKE) --no-print-directory host-packages HOST_PACKAGES="$(VM_PACKAGES)"
	$(BIN)/pytest -n 0 -s tests/vm

check: venv
	$(BIN)/pytest -m "not integration"

down: venv
	$(BIN)/hardway nodes down

host-packages:
	@missing=$$(for p in $(HOST_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing host packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@command -v go >/dev/null || { echo "Go 1.26+ is needed to build the mirror: install it first" >&2; exit 1; }

venv: $(BIN)/hardway

# --no-compile: byte-compiling every module of the ansible package (over 19,000 files) is
# most of pip's time (the runtime packages here: 3 min 12 s, 36 s without); Python compiles
# what it imports, once.
$(BIN)/hardway: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --no-compile --upgrade pip
	$(BIN)/pip install --quiet --no-compile -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
