# Makefile: builds the library, the `fpa` CLI, the tests and the benchmarks.
#   make            deps + build/fpa           make test        deps + run the GoogleTest suite
#   make bench-ops  GEMM/conv GFLOP/s          make deps        install missing Debian packages
#   make fixtures   regenerate tests/fixtures from the PyTorch reference (needs torch; make test never does)
# nvcc on PATH (or CUDA_HOME/bin/nvcc) adds the CUDA backend (ops/cuda); without it the build is CPU-only.

BUILD    ?= build
CXX      ?= g++
ARCH     ?= -march=native
CXXFLAGS ?= -O2 $(ARCH) -g
CXXFLAGS += -std=c++17 -fopenmp -Wall -Wextra -Wno-unused-parameter -I. -MMD -MP
LDLIBS   += -fopenmp -ldl -lpthread -lz -lpng -ljpeg

CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(shell command -v nvcc 2>/dev/null || (test -x $(CUDA_HOME)/bin/nvcc && echo $(CUDA_HOME)/bin/nvcc))
NVCCFLAGS ?= -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90

LIB_SRC := $(wildcard autograd/*.cpp ops/*.cpp ops/cpu/*.cpp ops/stub/*.cpp nn/*.cpp fpa/*.cpp train/*.cpp data/*.cpp)
OBJ      := $(BUILD)/obj
LIB_OBJ := $(LIB_SRC:%.cpp=$(OBJ)/%.o)
ifneq ($(NVCC),)
  CU_SRC    := $(wildcard ops/cuda/*.cu)
  LIB_OBJ   += $(CU_SRC:%.cu=$(OBJ)/%.cu.o)
  CXXFLAGS  += -DFPA_WITH_CUDA -I$(CUDA_HOME)/include
  LDLIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart
endif
TEST_SRC  := $(wildcard tests/*.cpp)
TEST_OBJ  := $(TEST_SRC:%.cpp=$(OBJ)/%.o)

.PHONY: all deps test bench-ops bench-train train sample paint fixtures clean
all: deps $(BUILD)/fpa

deps:
	@bash tools/deps.sh

$(OBJ)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(OBJ)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -I. -DFPA_WITH_CUDA -c $< -o $@

CLI_OBJ   := $(patsubst %.cpp,$(OBJ)/%.o,tools/fpa_cli.cpp $(wildcard tools/cli_*.cpp))
$(BUILD)/fpa: $(LIB_OBJ) $(CLI_OBJ)
	$(CXX) $^ -o $@ $(LDLIBS)

$(BUILD)/fpa_tests: $(LIB_OBJ) $(TEST_OBJ)
	$(CXX) $^ -o $@ -lgtest -lgtest_main $(LDLIBS)

$(BUILD)/bench_ops: $(LIB_OBJ) $(OBJ)/tools/bench_ops.o $(OBJ)/tools/cpu_peak.o
	$(CXX) $^ -o $@ -lbenchmark $(LDLIBS)

test: deps $(BUILD)/fpa $(BUILD)/fpa_tests
	$(BUILD)/fpa --version
	FPA_BIN=$(BUILD)/fpa $(BUILD)/fpa_tests $(GTEST_ARGS)

bench-ops: deps $(BUILD)/bench_ops
	$(BUILD)/bench_ops $(BENCH_ARGS)

$(BUILD)/bench_train: $(LIB_OBJ) $(OBJ)/tools/bench_train.o
	$(CXX) $^ -o $@ $(LDLIBS)

bench-train: deps $(BUILD)/bench_train
	$(BUILD)/bench_train $(BENCH_ARGS)

# Training and pictures. make train PRESET=grey32-T32 DATA=/path/to/images STEPS=450000 OUT=runs/x
PRESET ?= cpu-small
DATA   ?= fashion-mnist
OUT    ?= runs/$(PRESET)
DEVICE ?= cpu  # the CUDA backend (issue 5) will make cuda the default where a GPU is present
TRAIN_FLAGS = --preset $(PRESET) --data $(DATA) --out $(OUT) --device $(DEVICE) $(if $(STEPS),--steps $(STEPS))
train: deps $(BUILD)/fpa
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
