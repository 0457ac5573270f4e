# The two set-up commands: `make demo` (the main job on built-in data) and `make test` (the whole test suite).
SWIFT ?= swift
CONFIG ?= release

.PHONY: demo test build deps bench clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build -c $(CONFIG)

demo: build
	.build/$(CONFIG)/mml env
	.build/$(CONFIG)/mml data inspect synthetic --decode
	.build/$(CONFIG)/mml-bench kernels

test: deps
	$(SWIFT) build -c $(CONFIG)
	@echo "== kernel tests again on the portable (non-AVX-512) C paths"
	MML_KERNELS_ISA=portable $(SWIFT) test -c $(CONFIG) --disable-swift-testing --filter 'Gauss|TopK|Normalize|SimilarityKernels'
	@echo "== the whole suite"
	$(SWIFT) test -c $(CONFIG) --disable-swift-testing
	@echo "== example harness (Python + NumPy calling mml score)"
	CONFIG=$(CONFIG) examples/run-harness.sh

bench: build
	.build/$(CONFIG)/mml-bench kernels

clean:
	rm -rf .build
