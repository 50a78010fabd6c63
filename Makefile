# Two commands do all the setup on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN ?= runs/demo
DEMO_ARGS ?=   # extra train.py overrides for the demo (the tests shorten it)

.PHONY: demo test test-fast install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall when the project's dependencies change.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	# BasicSR, the reference the BasicVSR tests compare against; without its requirements, which would add
	# opencv-python beside opencv-python-headless and tb-nightly (the model code needs neither)
	$(PY) -m pip install --quiet --no-deps basicsr-fixed==1.4.2
	touch $(STAMP)

install: $(STAMP)

# Train on the built-in clips, score the result against bicubic on the held-out clips,
# export it, and upscale a generated video (with sound) with the export, then with the shipped model.
demo: $(STAMP)
	$(PY) train.py experiment=demo hydra.run.dir=$(RUN) $(DEMO_ARGS)
	$(PY) evaluate.py checkpoint=$(RUN)/checkpoints/last.ckpt data=sample scale=4 hydra.run.dir=$(RUN)/eval
	$(PY) export.py checkpoint=$(RUN)/checkpoints/last.ckpt output_dir=$(RUN)/export metrics=$(RUN)/eval/metrics.json overwrite=true
	$(PY) -c "from vsr.io.synthetic import write_test_video; write_test_video('$(RUN)/clip.mp4', 24, 96, 64)"
	$(PY) upscale.py input=$(RUN)/clip.mp4 output=$(RUN)/clip_x4.mp4 weights=$(RUN)/export overwrite=true
	$(PY) upscale.py input=$(RUN)/clip.mp4 output=$(RUN)/clip_x4_shipped.mp4 overwrite=true
	@echo "demo outputs: $(RUN)/eval/report.md  $(RUN)/export/  $(RUN)/clip_x4.mp4 (demo model)  $(RUN)/clip_x4_shipped.mp4 (shipped model)"

# The web page test drives Debian's chromium: installed here when missing and make runs as root (as CI does)
BROWSER := /usr/bin/chromedriver
$(BROWSER):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "note: the web page test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver); skipped without them"; fi

# Two workers (pytest-xdist), a file each at a time: the tests run one thread apiece (tests/conftest.py),
# so the 2-core machine runs the suite in about 14 minutes instead of 20
test: $(STAMP) | $(BROWSER)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -n 2 --dist loadfile

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -m "not slow"

clean:
	rm -rf runs outputs multirun
