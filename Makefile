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

.PHONY: fuzz fuzz-build sanitize sanitize-asan sanitize-asan-cpp sanitize-asan-python sanitize-tsan

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

# ASan + UBSan (docs/reliability.md, "Sanitizers"): the C++ tests, then the Python tests with
# the interpreter preloading libasan. Only the test binaries (and what they run: the CLI, the
# custom-op library) are built, not the benchmarks, tools or examples. ctest leaves out the
# packaging tests (they install and pip-install the build) and the example program.
# UBSan halts on the first report, so a finding fails the test that made it.
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
SANITIZE_CMAKE = -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPython_EXECUTABLE=$(PY)
ASAN_CPP_TESTS := graph_tests stream_tests device_tests compiler_tests runtime_tests net_tests
ASAN_ENV := ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
sanitize: sanitize-asan sanitize-tsan

sanitize-asan: sanitize-asan-cpp sanitize-asan-python

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) $(SANITIZE_CMAKE) -DPFRT_SANITIZE=address,undefined

sanitize-asan-cpp: $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j 2 --target $(ASAN_CPP_TESTS)
	$(ASAN_ENV) ctest --test-dir $(ASAN_BUILD) --output-on-failure -j 2 -E '^(packaging_|example_)'

# pytest runs under an uninstrumented interpreter: ASan must be the first library loaded, and
# leak checking is off (CPython's own allocations at exit are not ours). The Python tests use
# the whole build (the module, the CLI, the gRPC stubs, the custom-op library).
sanitize-asan-python: $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j 2
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 LD_PRELOAD=$$(gcc -print-file-name=libasan.so) \
	    PYTHONPATH=$(ASAN_BUILD)/python $(PY) -m pytest -q -p no:cacheprovider tests/python

# ThreadSanitizer for the actor engine (batcher, streams, pipelines, remote stages, the
# stage-server guard, fault injection). Suppressions (tools/tsan.supp) are for uninstrumented
# third-party libraries only, never for our code. A test with any report fails (exit 66); with
# Debian's CAF (not built with TSan) the suites that pass messages between threads report the
# mailbox hand-over TSan cannot see (docs/reliability.md, "Sanitizers").
$(TSAN_BUILD)/build.ninja:
	cmake -S . -B $(TSAN_BUILD) $(SANITIZE_CMAKE) -DPFRT_SANITIZE=thread

TSAN_SUITES := ActorRuntimeTest|BaspGuardTest|BatchRunnerTest|BatcherTest|FaultInjectionTest|PartitionedModelTest|PipelineTest|RemoteStageTest|RemoteWireTest|StreamTest|StateMapTest|TensorAxisTest|WindowAssemblerTest
sanitize-tsan: $(TSAN_BUILD)/build.ninja
	cmake --build $(TSAN_BUILD) -j 2 --target runtime_tests stream_tests
	TSAN_OPTIONS=second_deadlock_stack=1:suppressions=$(CURDIR)/tools/tsan.supp ctest --test-dir $(TSAN_BUILD) --output-on-failure \
	    -R '^($(TSAN_SUITES))\.' -j 2
