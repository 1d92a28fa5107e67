# Every target sets itself up on a fresh machine: a .venv with the Python deps, and a collections
# tree (.build/collections) holding amazon.aws from the ansible PyPI bundle (no Galaxy needed).

PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
COLLECTIONS := $(CURDIR)/.build/collections
ANSIBLE_BUNDLE ?= 12.3.0

export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)

STAMP_VENV := $(VENV)/.installed
STAMP_COLLECTIONS := $(COLLECTIONS)/.installed

.PHONY: setup system demo test lint sanity units integration build bench clean

setup: $(STAMP_VENV) $(STAMP_COLLECTIONS)

$(STAMP_VENV): requirements.txt tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -r tests/requirements.txt
	touch $@

$(STAMP_COLLECTIONS): $(STAMP_VENV) tools/install_collections.py
	$(BIN)/python tools/install_collections.py --bundle $(ANSIBLE_BUNDLE) --dest $(COLLECTIONS)
	touch $@

# The main job: the playbook against a local KMS endpoint (moto server) started for the run.
# Compact output (changes, errors and the summary); KEEP=1 keeps the demo's folder (the summary says where).
demo: setup
	ANSIBLE_DISPLAY_OK_HOSTS=false ANSIBLE_DISPLAY_SKIPPED_HOSTS=false \
	$(BIN)/python tests/harness/kms_server.py run -- \
		$(BIN)/ansible-playbook -i playbooks/inventory/local.ini playbooks/demo.yml \
		$(if $(filter-out 0 no false,$(KEEP)),-e demo_keep=true)

test: units lint sanity integration

units: setup
	$(BIN)/python -m pytest tests/unit

lint: setup
	$(BIN)/ansible-lint --offline --profile production

sanity: setup
	$(BIN)/python tools/sanity.py

# Debian packages for the SSH test tier (sshd, sudo, acl, python3-venv), installed when missing.
system:
	bash tools/system_packages.sh

# Two workers, each with its own moto server (and sshd): ansible-playbook start-up is CPU-bound.
integration: setup system
	$(BIN)/python -m pytest -n 2 --durations=10 tests/integration

build: setup
	$(BIN)/ansible-galaxy collection build --force --output-path .build/dist .

# Benchmarks against peers (not part of `make test`): prints a table, writes .build/bench/results.json.
# About 35 minutes on 2 cores (copy 8, role 4, vars 8, ssh 8 with the sshd of `make system`, engine and profile 3);
# BIG=1 (about 85 minutes) adds 1 GiB to the engine sizes, copies 1 GiB and 200 small files.
# See bench/README.md.
bench: setup
	$(BIN)/python bench/run.py $(if $(filter-out 0 no false,$(BIG)),--big)

clean:
	rm -rf .venv .build tests/output
