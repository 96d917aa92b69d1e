# The two set-up commands of README.md: `make demo` and `make test` (both install, build and run).
BUILD ?= build
JOBS ?= $(shell nproc)
OUT ?= out/demo

.PHONY: setup build test demo clean
setup:
	@scripts/setup

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

demo: build
	$(BUILD)/moirai place models/llama2_13b.onnx --cluster clusters/workstation-mixed.json --method all --time-limit 20 --out $(OUT)
	$(BUILD)/moirai place models/decode/llama2_13b_decode.onnx --cluster clusters/workstation-mixed.json --context 4096 --method layer-dp
	@echo "open $(OUT)/report.html to see the plan"

clean:
	rm -rf $(BUILD) out
