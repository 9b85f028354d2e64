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

# Hardening (issue 14, docs/reliability.md). Each in its own build dir; -j2 like every build.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= onnx_import pfm_loader compile_cache_entry npy_reader stage_wire kserve_json http_request zmq_frame

.PHONY: fuzz fuzz-build sanitize sanitize-asan sanitize-tsan

$(FUZZ_BUILD)/build.ninja:
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
	    -DPFRT_FUZZ=ON -DPython_EXECUTABLE=$(PY)

fuzz-build: $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j 2

# Runs every target for FUZZ_SECONDS on a copy of its seed corpus (fuzz/corpus/NAME); the
# executions each made are printed. A crash leaves crash-* in $(FUZZ_BUILD)/NAME and fails.
fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/$$t/corpus && cp -n fuzz/corpus/$$t/* $(FUZZ_BUILD)/$$t/corpus/ 2>/dev/null || true; \
	  echo "== $$t ($(FUZZ_SECONDS) s)"; \
	  (cd $(FUZZ_BUILD)/$$t && ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    ../bin/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -malloc_limit_mb=2048 -timeout=20 \
	    -print_final_stats=1 corpus 2>&1 | grep -E "^stat::number_of_executed_units|^==[0-9]+== *ERROR|^SUMMARY" ); \
	done

# ASan + UBSan: the C++ tests and the Python tests (the interpreter preloads libasan).
sanitize: sanitize-asan sanitize-tsan

sanitize-asan:
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPFRT_SANITIZE=address,undefined \
	    -DPython_EXECUTABLE=$(PY)
	cmake --build build-asan -j 2
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --test-dir build-asan --output-on-failure -j 2
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 LD_PRELOAD=$$(gcc -print-file-name=libasan.so) \
	    PYTHONPATH=build-asan/python $(PY) -m pytest -q -p no:cacheprovider tests/python

# ThreadSanitizer for the actor engine (batcher, streams, pipelines, remote stages).
sanitize-tsan:
	cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPFRT_SANITIZE=thread \
	    -DPython_EXECUTABLE=$(PY)
	cmake --build build-tsan -j 2 --target runtime_tests stream_tests
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest --test-dir build-tsan --output-on-failure \
	    -R '^(Batcher|Stream|Pipeline|RemoteStage|BaspGuard|StateMap|Window)' -j 2
