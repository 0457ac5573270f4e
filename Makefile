# The two set-up commands: `make demo` (the main job on built-in data) and `make test` (the whole test suite);
# `make python` installs the Python package (`import mml`) with the C library inside.
SWIFT ?= swift
CONFIG ?= release
PYTHON ?= python3
# The C compiler for the C ABI's test program: cc, else the Swift toolchain's clang.
CAPI_CC ?= $(shell command -v cc 2>/dev/null || command -v clang 2>/dev/null)

.PHONY: demo test build deps bench clean python capi-test python-test

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build -c $(CONFIG)

# The main job on the built-in synthetic data (no download): train a small model, evaluate it on 600 test
# episodes (fused and per level, 95% CI), then the ablation over the 7 level subsets, which ends with one sentence
# saying what it shows (made by the core from the table). The synthetic classes are cue triples, one cue per level
# (docs/SYNTHETIC.md). Each run gets its own directory under runs/ (nothing earlier is overwritten).
DEMO_STAMP := $(shell date +%Y%m%d-%H%M%S)
DEMO_DIR ?= runs/demo-$(DEMO_STAMP)
DEMO_DATA = synthetic --synthetic-size 42

demo: build
	.build/$(CONFIG)/mml env
	.build/$(CONFIG)/mml train $(DEMO_DATA) --episodes-per-epoch 150 --epochs 2 --episodes-per-step 1 --lr-step 2 \
	    --val-episodes 50 --out $(DEMO_DIR) --plot $(DEMO_DIR)/curves.svg
	.build/$(CONFIG)/mml eval --checkpoint $(DEMO_DIR)/best.safetensors $(DEMO_DATA) --episodes 600 \
	    --report $(DEMO_DIR)/eval.json
	.build/$(CONFIG)/mml ablate --checkpoint $(DEMO_DIR)/best.safetensors $(DEMO_DATA) --episodes 600 \
	    --out $(DEMO_DIR)/ablation
	@echo "results in $(DEMO_DIR): curves.svg, eval.json, ablation/ablation.{md,json,svg}"

test: deps
	$(SWIFT) build -c $(CONFIG)
	@echo "== kernel tests again on the portable C paths"
	MML_KERNELS_ISA=portable $(SWIFT) test -c $(CONFIG) --disable-swift-testing --filter 'Gauss|TopK|Normalize|SimilarityKernels'
	@echo "== kernel tests again on the AVX2 paths (the dispatched ones already where the CPU lacks AVX-512)"
	MML_KERNELS_ISA=avx2 $(SWIFT) test -c $(CONFIG) --disable-swift-testing \
	    --filter 'Gauss|TopK|Normalize|SimilarityKernels|ConvKernel|ThreadCount'
	@echo "== the whole suite"
	$(SWIFT) test -c $(CONFIG) --disable-swift-testing
	$(MAKE) capi-test python-test
	@echo "== example harnesses (the Python package; the PyTorch one skips without torch)"
	CONFIG=$(CONFIG) examples/run-harness.sh

# The C ABI from C: every status and last-error string, the handle registry, threads (Tests/CAPI/capi_test.c).
capi-test:
	@echo "== C ABI test program"
	$(CAPI_CC) -std=c11 -O1 -Wall -Werror -o .build/$(CONFIG)/capi_test Tests/CAPI/capi_test.c -I Sources/MMLCAPI/include \
	    -L .build/$(CONFIG) -lmmlc -lpthread -lm -Wl,-rpath,$(CURDIR)/.build/$(CONFIG)
	.build/$(CONFIG)/capi_test

# The Python package's tests (pytest), importing python/ with this build's library and CLI (nothing installed).
python-test:
	@echo "== Python package tests"
	MML_LIBRARY=$(CURDIR)/.build/$(CONFIG)/libmmlc.so MML=$(CURDIR)/.build/$(CONFIG)/mml PYTHONPATH=$(CURDIR)/python \
	    $(PYTHON) -m pytest -q -p no:cacheprovider python/tests

# Build the C library in release and pip-install the Python package with the library copied inside it.
python: deps
	$(SWIFT) build -c release --product mmlc
	cp .build/release/libmmlc.so python/mml/libmmlc.so
	$(PYTHON) -m pip install $(PIP_FLAGS) ./python

bench: build
	.build/$(CONFIG)/mml-bench kernels

clean:
	rm -rf .build
