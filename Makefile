# Set-up and build entry points. `make run` and `make test` work on a fresh Debian 12 machine:
# both install what is missing (Debian packages, onnxruntime-node from npm), then build.
BUILD ?= build
PY := /usr/bin/python3
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE=$(PY)

.PHONY: all deps build run test bench bench-actors install clean

all: build

deps:
	@bash tools/install_deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

# ONNX Runtime (the reference peer for tests and benchmarks) comes from npm.
$(BUILD)/npm/node_modules/onnxruntime-node:
	mkdir -p $(BUILD)/npm
	npm install --ignore-scripts --no-audit --no-fund --prefix $(BUILD)/npm onnxruntime-node

build: deps $(BUILD)/build.ninja $(BUILD)/npm/node_modules/onnxruntime-node
	cmake --build $(BUILD) -j 2

run: build
	PYTHONPATH=$(BUILD)/python $(PY) examples/demo.py

test: build
	bash tools/run_tests.sh $(BUILD)

bench: build
	PYTHONPATH=$(BUILD)/python $(PY) bench/run_bench.py

bench-actors: build
	PYTHONPATH=$(BUILD)/python $(PY) bench/bench_actors.py

# The C++ library, headers, CLI, CMake package and pkg-config file (docs/guide/install.md).
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD)
