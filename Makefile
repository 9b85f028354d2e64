# Set-up and build entry points. `make run` and `make test` work on a fresh Debian 12 machine:
# both install what is missing (Debian packages, onnxruntime-node from npm), then build.
BUILD ?= build
PY := /usr/bin/python3
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE=$(PY)

.PHONY: all deps build run test bench bench-ci bench-actors install clean

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

# A short side-by-side run for CI's log: the host changes between CI machines, and the table
# names its CPU, flags and load. One round: a record of the host, not a measurement to quote.
bench-ci: build
	PYTHONPATH=$(BUILD)/python $(PY) bench/run_bench.py --rounds 1 --runs 5 --warmup 2 --markdown $(BUILD)/bench-ci.md

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
FUZZ_RUNS ?= -1
FUZZ_TARGETS ?= onnx_import pfm_loader compile_cache_entry npy_reader stage_wire kserve_json http_request zmq_frame kernel_run
# The throughput build (make fuzz FUZZ_BUILD=build-fuzz-ubsan): UBSan only, no ASan shadow,
# redzones or quarantine. A finding there is re-run on the ASan build to see memory errors.
FUZZ_UBSAN_BUILD ?= build-fuzz-ubsan
FUZZ_SANITIZERS = $(if $(filter $(FUZZ_UBSAN_BUILD),$(FUZZ_BUILD)),undefined,address,undefined)
# ASan's defaults are for a long-lived program: a 256 MB quarantine (every freed block is held
# back; cycling through it faults fresh pages in on every input), 30-frame allocation stacks
# and a fill of each new block. Smaller values keep use-after-free and overflow detection for
# the blocks one input touches and cost less per input (zmq_frame: 7,220 executions per CPU
# second against 6,135; pfm_loader, which allocates little, the same; docs/reliability.md).
FUZZ_ASAN_OPTIONS ?= allocator_may_return_null=1:detect_leaks=0:quarantine_size_mb=16:malloc_context_size=5:max_malloc_fill_size=0
FUZZ_ENV = ASAN_OPTIONS=$(FUZZ_ASAN_OPTIONS) UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# libFuzzer 14's entropic power schedule updates a frequency per coverage feature per input
# (InputCorpus::UpdateFeatureFrequency): perf put 59% of http_request's CPU there against 6% in
# the target. Without it the same corpus pass takes 2.3x-4x less CPU (docs/reliability.md);
# the corpora are grown, and the count of executions is what the long runs are for.
FUZZ_FLAGS ?= -entropic=0

.PHONY: fuzz fuzz-build sanitize sanitize-asan sanitize-asan-cpp sanitize-asan-python sanitize-asan-kernel-run sanitize-tsan sanitize-tsan-grpc caf-tsan

$(FUZZ_BUILD)/build.ninja:
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
	    -DPFRT_FUZZ=ON -DPFRT_FUZZ_SANITIZE=$(FUZZ_SANITIZERS) -DPython_EXECUTABLE=$(PY)

fuzz-build: $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j 2

# Runs every target for FUZZ_SECONDS (and at most FUZZ_RUNS executions, -1: no bound) on its
# corpus in $(FUZZ_BUILD)/NAME/corpus, seeded from fuzz/corpus/NAME. Each run's whole output
# is in $(FUZZ_BUILD)/NAME/fuzz.log; the executions, their rate and any error are printed. A
# crash leaves crash-* in $(FUZZ_BUILD)/NAME and fails.
fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/$$t/corpus && cp -n fuzz/corpus/$$t/* $(FUZZ_BUILD)/$$t/corpus/ 2>/dev/null || true; \
	  echo "== $$t ($(FUZZ_SECONDS) s, $(FUZZ_RUNS) runs, $(FUZZ_SANITIZERS))"; \
	  (cd $(FUZZ_BUILD)/$$t && status=0 && { $(FUZZ_ENV) ../bin/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) \
	    -runs=$(FUZZ_RUNS) $(FUZZ_FLAGS) -rss_limit_mb=4096 -malloc_limit_mb=2048 -timeout=20 -print_final_stats=1 corpus \
	    > fuzz.log 2>&1 || status=$$?; } && \
	    { grep -E "^stat::(number_of_executed_units|average_exec_per_sec)|^==[0-9]+== *ERROR|^SUMMARY|runtime error" fuzz.log || true; } && \
	    exit $$status); \
	done

# ASan + UBSan (docs/reliability.md, "Sanitizers"): the C++ tests, then the Python tests with
# the interpreter preloading libasan. Only the test binaries (and what they run: the CLI, the
# custom-op library) are built, not the benchmarks, tools or examples. ctest leaves out the
# packaging tests (they install and pip-install the build) and the example program.
# UBSan halts on the first report, so a finding fails the test that made it. A huge allocation
# returns null as malloc does (the tests that ask for one expect a clean failure, not ASan's abort).
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
SANITIZE_CMAKE = -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPython_EXECUTABLE=$(PY)
ASAN_CPP_TESTS := graph_tests stream_tests device_tests compiler_tests runtime_tests net_tests
# The settings tools/run_tests.sh gives every test: passes verified, teams as asked (the tests
# check what a team of N threads does; a loaded machine must not shrink it).
TEST_ENV := PFRT_VERIFY_PASSES=1 PFRT_ADAPT_THREADS=0
ASAN_ENV := $(TEST_ENV) ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$(CURDIR)/tools/ubsan.supp
sanitize: sanitize-asan sanitize-tsan

sanitize-asan: sanitize-asan-cpp sanitize-asan-python

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) $(SANITIZE_CMAKE) -DPFRT_SANITIZE=address,undefined

sanitize-asan-cpp: $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j 2 --target $(ASAN_CPP_TESTS)
	$(ASAN_ENV) ctest --test-dir $(ASAN_BUILD) --output-on-failure -j 2 -E '^(packaging_|example_)'

# pytest runs under an uninstrumented interpreter: ASan must be the first library loaded, and
# leak checking is off (CPython's own allocations at exit are not ours). libstdc++ is preloaded
# too: the interpreter does not link it, and ASan's __cxa_throw interceptor, set up before it
# loads, failed its CHECK on the first C++ exception (torch's). Tests that ask for huge arrays
# expect MemoryError, hence allocator_may_return_null. The Python tests use
# the whole build (the module, the CLI, the gRPC stubs, the custom-op library).
# UBSan does not halt here (that would end the whole run) and prints to stderr whatever
# log_path says (GCC 12 with ASan: neither ASAN_OPTIONS' nor UBSAN_OPTIONS' log_path moves its
# reports), and pytest's default capture shows fd 2 only for failing tests: a report in a
# passing test went unseen. --capture=sys leaves fd 2 (our native code's, and the processes
# the tests start) in the log, kept in the build folder; any ASan error or UBSan report in it
# fails the target.
ASAN_PY_LOG = $(ASAN_BUILD)/sanitize-asan-python.log
sanitize-asan-python: $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j 2
	status=0; $(TEST_ENV) ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:suppressions=$(CURDIR)/tools/ubsan.supp \
	    LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libstdc++.so)" \
	    PYTHONPATH=$(ASAN_BUILD)/python $(PY) -m pytest -q -p no:cacheprovider --capture=sys tests/python \
	    > $(ASAN_PY_LOG) 2>&1 || status=$$?; tail -n 20 $(ASAN_PY_LOG); \
	  if grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error:' $(ASAN_PY_LOG); then \
	    echo "sanitizer reports in $(ASAN_PY_LOG)"; exit 1; fi; exit $$status

# kernel_run's corpus replayed once under this ASan + UBSan build (GCC), each input through the
# fuzz harness without libFuzzer (fuzz/replay_main.cpp); stops at the first report or finding and
# names the input. KERNEL_RUN_CORPUS: a folder (default the seed corpus with the regress inputs).
# A grown corpus of tens of thousands of inputs is replayed in chunks (docs/reliability.md,
# "Sanitizers, stop 20"), with the same environment.
KERNEL_RUN_CORPUS ?= fuzz/corpus/kernel_run
sanitize-asan-kernel-run: $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j 2 --target kernel_run_replay
	status=0; ASAN_OPTIONS=$(FUZZ_ASAN_OPTIONS) UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    $(ASAN_BUILD)/bin/kernel_run_replay -timeout=120 $(KERNEL_RUN_CORPUS) \
	    > $(ASAN_BUILD)/kernel-run-replay.log 2>&1 || status=$$?; tail -n 25 $(ASAN_BUILD)/kernel-run-replay.log; exit $$status

# ThreadSanitizer for the actor engine (batcher, streams, pipelines, remote stages, the
# stage-server guard, fault injection) and the server (net_tests: the gRPC listener and its
# ModelStreamInfer reactor, the sequence table, ZeroMQ, the model repository's batchers, the
# clients). CAF's mailbox is where one actor's message becomes
# another's: TSan sees that hand-over only in a CAF built with TSan, so the build links
# CAF 0.17.6 built from Debian's source by tools/build_caf_tsan.sh (`make caf-tsan`, once,
# into $(CAF_TSAN); LD_LIBRARY_PATH makes the tests and the stage-server processes they
# start load it whatever their RUNPATH says). Objects still compile against
# Debian's /usr/include/caf: the script checks that those headers equal the built ones.
# OMP_THREAD_LIMIT=1: oneDNN's parallel loops run on the calling thread. libgomp is not built
# with TSan, so the barrier that ends a loop on its worker threads is invisible and oneDNN's
# scratch buffers (written by a worker, freed by the caller) were reported; our own threads
# (actors, batchers, stage servers) are unaffected. Suppressions (tools/tsan.supp) are for
# uninstrumented third-party libraries only (gRPC, protobuf and libzmq are Debian's, not built
# with TSan), never for a race whose accesses are in our code. A test with any report fails
# (exit 66).
CAF_TSAN ?= $(TSAN_BUILD)/caf
TSAN_CMAKE = $(SANITIZE_CMAKE) -DPFRT_SANITIZE=thread \
    -DCAF_CORE_LIBRARY=$(abspath $(CAF_TSAN))/lib/libcaf_core.so -DCAF_IO_LIBRARY=$(abspath $(CAF_TSAN))/lib/libcaf_io.so

caf-tsan:
	tools/build_caf_tsan.sh $(CAF_TSAN)

# RunOptionsTest (terminate set from another thread, run_async), PlanCacheTest (sessions
# compiling into one cache at once) and CompiledModelTest (partitions as device actors) are
# runtime_tests' other suites with threads of their own. The ways a run is stopped from another
# thread run here too: stop_all_runs and a RunStopSource (RunOptionsTest.StopAllRuns*,
# .ARunStopSource*), a stage server's stop() and drain with a frame in flight
# (RemoteStageTest.StopEnds*), `pyflame-rt serve` at SIGTERM (stop_all_runs, RunInProgress,
# the drain and the shutdown watchdog in the TSan-built CLI, whose report makes its exit
# status 66: RemoteStageTest.Sigterm*), and the model server's stop_runs
# (ModelRepository.StopRuns*, in TSAN_NET_SUITES). NativeDeadlineTest (device_tests, not built
# here) runs stop_all_runs and RunStopSource inside the native kernels' loops.
TSAN_ENGINE_SUITES := ActorRuntimeTest|BaspGuardTest|BatchRunnerTest|BatcherTest|CompiledModelTest|FaultInjectionTest|PartitionedModelTest|PipelineTest|PlanCacheTest|RemoteStageTest|RemoteWireTest|RunOptionsTest|StreamTest|StateMapTest|TensorAxisTest|WindowAssemblerTest
# net_tests without a gRPC transport: the sequence table and its workers, the repository's
# batchers, the HTTP server and client (Boost.Beast is header-only, so instrumented), ZeroMQ,
# the codecs. The gRPC suites (GrpcServerTest, GrpcServerStop, ServerStop, the client's
# instances `/"grpc"`; its `/"http"` ones run here) are left out: every object gRPC hands
# from one of its threads to another (a request parsed, a reactor's callbacks, a response
# sent) is reported, several hundred reports per run, some with our frames on top, because
# that hand-over happens in uninstrumented gRPC (docs/reliability.md, "Sanitizers").
# `make sanitize-tsan-grpc` runs them for reading.
TSAN_NET_SUITES := GrpcCodec|Histogram|HttpRoutes|InferenceClient|KServeDatatype|KServeJson|Metrics|ModelRepository|PipelineTarget|RequestLimits|SchedulingParameters|SequenceTableTest|StatusTable|TensorBytes|WireSize|ZmqListenerTest|ZmqSubscriber|ZmqWire
TSAN_SUITES := $(TSAN_ENGINE_SUITES)|$(TSAN_NET_SUITES)
TSAN_ENV = $(TEST_ENV) LD_LIBRARY_PATH=$(abspath $(CAF_TSAN))/lib OMP_THREAD_LIMIT=1 \
    TSAN_OPTIONS=second_deadlock_stack=1:suppressions=$(CURDIR)/tools/tsan.supp
sanitize-tsan: caf-tsan
	cmake -S . -B $(TSAN_BUILD) $(TSAN_CMAKE) > /dev/null
	cmake --build $(TSAN_BUILD) -j 2 --target runtime_tests stream_tests net_tests pyflame-rt
	$(TSAN_ENV) ctest --test-dir $(TSAN_BUILD) --output-on-failure \
	    -R '^($(TSAN_SUITES))\.|^Transports/InferenceClientTest\..*/"http"$$' -j 2

# The gRPC suites under TSan, for reading the reports (expected to fail: see TSAN_NET_SUITES).
sanitize-tsan-grpc: sanitize-tsan
	-$(TSAN_ENV) ctest --test-dir $(TSAN_BUILD) --output-on-failure \
	    -R '^(GrpcServerTest|GrpcServerStop|ServerStop)\.|^Transports/InferenceClientTest\..*/"grpc"$$'
