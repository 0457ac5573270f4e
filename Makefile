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
	.build/$(CONFIG)/mml-bench kernels

test: deps
	$(SWIFT) build -c $(CONFIG)
	$(SWIFT) test -c $(CONFIG) --disable-swift-testing

bench: build
	.build/$(CONFIG)/mml-bench kernels

clean:
	rm -rf .build
