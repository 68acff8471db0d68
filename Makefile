# Two commands on a fresh machine:  make export-all   and   make test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Extras installed by `make setup` (every target; users may install fewer: pip install -e '.[onnx]').
EXTRAS := onnx,video,dev,plot,coreml,tensorflow,tfjs,pt2,openvino,tflite
NODE_RUNNER := rvm_export/runtimes/node
CHECKPOINT ?=
RESNET50_CHECKPOINT ?=
ONLY ?=

.PHONY: setup test export-all lint bench clean chromium

setup: $(VENV)/.installed $(NODE_RUNNER)/node_modules/.installed chromium

# Re-runs only when the dependency files change (idempotent).
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	touch $@

# The TF.js runner's Node.js packages, exactly as locked (pure JS + WebAssembly: nothing downloaded at run time).
$(NODE_RUNNER)/node_modules/.installed: $(NODE_RUNNER)/package-lock.json
	cd $(NODE_RUNNER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium for the browser TF.js runner and the web demo's test (installed only if missing; needs root).
chromium:
	tools/install_chromium.sh

test: setup
	$(PY) -m pytest

export-all: setup
	$(PY) -m rvm_export.release $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT)) \
		$(if $(RESNET50_CHECKPOINT),--resnet50-checkpoint $(RESNET50_CHECKPOINT)) $(if $(ONLY),--only $(ONLY))

# Speed tables (never timed tests): the release artifacts next to an official-style ONNX export (rvm-bench;
# run make export-all first), PyTorch vs ONNX Runtime, TensorFlow/TF.js, .pt2/OpenVINO/LiteRT, convert_video vs a plain loop.
BENCH_CHECKPOINT ?= $(or $(CHECKPOINT),../shared/weights/rvm_mobilenetv3_fgf_tfjs.pth)
bench: setup
	$(PY) benchmarks/official_onnx.py --checkpoint $(BENCH_CHECKPOINT) --output artifacts/official_style_fp32.onnx
	$(VENV)/bin/rvm-bench artifacts/official_style_fp32.onnx $(wildcard artifacts/rvm_mobilenetv3_*.onnx) \
		$(wildcard artifacts/rvm_mobilenetv3_fp32.torchscript) --checkpoint $(BENCH_CHECKPOINT)
	$(PY) benchmarks/onnx_speed.py
	$(PY) benchmarks/tf_speed.py
	$(PY) benchmarks/runtime_speed.py
	$(PY) benchmarks/convert_speed.py --checkpoint $(BENCH_CHECKPOINT)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	find artifacts -mindepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache build *.egg-info
