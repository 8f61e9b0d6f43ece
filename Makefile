# cpiscope build file. The README's two commands are `make demo` and `make test`;
# both install missing system packages first (.ci/deps.sh).
SWIFT ?= swift
BIN := .build/release/cpiscope

.PHONY: deps build release demo test test-swift test-python clean

deps:
	@.ci/deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# The main job on bundled data.
demo: release
	$(BIN) demo

# Every test: Swift (parity, parsers, CLI), the numeric suites again under every OpenBLAS kernel family
# this CPU runs and with the direct bf16 kernel off (.ci/portability.sh), Python (HDF5 layout through
# h5py/xarray), then libFuzzer over the parsers of untrusted files (.ci/fuzz.sh: 60 s per target;
# CPISCOPE_FUZZ_SECONDS).
test:
	@.ci/deps.sh --python
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	.ci/portability.sh
	python3 -m pytest -q Tests/python
	.ci/fuzz.sh

clean:
	rm -rf .build
