# The two set-up commands of README.md: `make demo` and `make test` (both install, build and run).
BUILD ?= build
JOBS ?= $(shell nproc)
OUT ?= out/demo

ASAN_BUILD ?= build-asan

.PHONY: setup build test test-release test-sanitize demo clean
setup:
	@scripts/setup

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Every test twice: the release build, then the same suite under AddressSanitizer + UBSan.
test: test-release test-sanitize

test-release: build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The whole suite under AddressSanitizer + UBSan (its own build directory, -O1: it builds in about half the time of
# -O2 and runs the suite faster), but the two exact MILP proofs: ASan's allocator slows CBC (every malloc in the
# process goes through it) past their time limits; the release pass proves them.
SANITIZE_SKIP ?= Milp.ExampleOneOptimumIs30|Milp.HeftExampleOptima
test-sanitize: setup
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE=-O1 -DMOIRAI_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) -E '$(SANITIZE_SKIP)'

demo: build
	$(BUILD)/moirai place models/llama2_13b.onnx --cluster clusters/workstation-mixed.json --method all --time-limit 20 --out $(OUT)
	$(BUILD)/moirai place models/decode/llama2_13b_decode.onnx --cluster clusters/workstation-mixed.json --context 4096 --method layer-dp
	@echo "open $(OUT)/report.html to see the plan"

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) out
