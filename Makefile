# Two commands on a fresh machine:  make export-all   and   make test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Extras installed by `make setup` (every target; users may install fewer: pip install -e '.[onnx]').
EXTRAS := onnx,video,dev,plot,coreml,tensorflow,tfjs,pt2,openvino,tflite,ray,executorch,ncnn,mnn,sign
NODE_RUNNER := rvm_export/runtimes/node
CHECKPOINT ?=
RESNET50_CHECKPOINT ?=
ONLY ?=
FORCE ?=
JUNIT ?= artifacts/junit.xml
# A PEM private key (EC P-256): the release folder is signed with model-signing, manifest.json.sig next to the manifest.
SIGNING_KEY ?=

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

# Two pytest-xdist workers: half the suite is single-threaded Python (exports, conversions, subprocesses), so two
# share the two cores; passive OpenMP waiting keeps one worker's idle threads from spinning on the other's core.
TEST_WORKERS ?= 2
# Our own runs refuse to run an artifact unconfined (docs/security.md); REQUIRE_SANDBOX=0 where Landlock is missing.
REQUIRE_SANDBOX ?= 1
test: setup
	OMP_WAIT_POLICY=PASSIVE RVM_REQUIRE_SANDBOX=$(REQUIRE_SANDBOX) $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup

export-all: setup
	RVM_REQUIRE_SANDBOX=$(REQUIRE_SANDBOX) $(PY) -m rvm_export.release $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT)) \
		$(if $(RESNET50_CHECKPOINT),--resnet50-checkpoint $(RESNET50_CHECKPOINT)) $(if $(ONLY),--only $(ONLY)) \
		$(if $(FORCE),--force) $(if $(JUNIT),--junit $(JUNIT)) \
		$(if $(SIGNING_KEY),--signing-key $(SIGNING_KEY))

# Speed tables (never timed tests), every one rvm-bench (interleaved rounds, median, accuracy vs PyTorch fp32) on the
# artifacts of make export-all (run it first; missing ones are left out): the release ONNX/TorchScript next to an
# official-style ONNX export; PyTorch eager vs ONNX Runtime, .pt2, OpenVINO (f32 pinned) and LiteRT; PyTorch eager vs
# TensorFlow and TF.js (Node.js) at 512x288. Then convert_video vs a plain loop (benchmarks/README.md).
BENCH_CHECKPOINT ?= $(or $(CHECKPOINT),../shared/weights/rvm_mobilenetv3_fgf_tfjs.pth)
BENCH := $(VENV)/bin/rvm-bench --checkpoint $(BENCH_CHECKPOINT)
BENCH_A := artifacts/rvm_mobilenetv3
bench: setup
	$(PY) benchmarks/official_onnx.py --checkpoint $(BENCH_CHECKPOINT) --output artifacts/official_style_fp32.onnx
	$(BENCH) artifacts/official_style_fp32.onnx $(wildcard $(BENCH_A)_*.onnx) $(wildcard $(BENCH_A)_fp32.torchscript)
	$(BENCH) --eager $(wildcard $(BENCH_A)_fp32.onnx $(BENCH_A)_fp16.onnx $(BENCH_A)_fp32.pt2 $(BENCH_A)_fp32_openvino.xml \
		$(BENCH_A)_fp16_openvino.xml $(BENCH_A)_fp32.tflite \
		$(BENCH_A)_1920x1080_s0.25_fp32.pte) --size 1920x1080 --ratio 0.25 --size 512x288 --ratio 1
	$(BENCH) --eager $(wildcard $(BENCH_A)_tf $(BENCH_A)_tfjs $(BENCH_A)_uint8_tfjs) --size 512x288 --ratio 1
	$(PY) benchmarks/convert_speed.py --checkpoint $(BENCH_CHECKPOINT)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	find artifacts -mindepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache build *.egg-info
