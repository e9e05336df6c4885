# The two commands: `make run` serves the PCM app on http://localhost:8080, `make test` runs every test.
.PHONY: run test build build-test deps web bench clean fuzz

JOBS ?= $(shell nproc)
RELEASE := build/release
TESTDIR := build/test

deps:
	@bash scripts/deps.sh

$(RELEASE)/build.ninja:
	cmake -S . -B $(RELEASE) -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF

$(TESTDIR)/build.ninja:
	cmake -S . -B $(TESTDIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRTSYNC_SANITIZE=ON

# Browser assets (client library, PCM app) into web/public/assets/, from package-lock.json.
web: deps
	npm run build

build: deps web $(RELEASE)/build.ninja
	cmake --build $(RELEASE) -j $(JOBS)

build-test: deps web $(TESTDIR)/build.ninja
	cmake --build $(TESTDIR) -j $(JOBS)

run: build
	$(RELEASE)/rtsync serve --listen 0.0.0.0:8080 --data ./data --web ./web/public

test: build-test
	cd $(TESTDIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

bench: build
	bash scripts/bench.sh

# libFuzzer (clang): builds $(FUZZDIR) and runs every target for FUZZ_SECONDS on its seed corpus
# (fuzz/corpus/TARGET, read only); new inputs go to $(FUZZDIR)/corpus/TARGET, crashes to
# $(FUZZDIR)/artifacts/TARGET (copy a crash into fuzz/corpus/TARGET once fixed: `make test` replays it).
FUZZDIR := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := frame_decoder rest_target config_loader jwt_verify pubnub_target

$(FUZZDIR)/build.ninja:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZDIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF -DRTSYNC_FUZZ=ON

fuzz: deps $(FUZZDIR)/build.ninja
	cmake --build $(FUZZDIR) -j $(JOBS) --target fuzz_all
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZDIR)/corpus/$$t $(FUZZDIR)/artifacts/$$t; \
	  dict=; [ -f fuzz/$$t.dict ] && dict=-dict=fuzz/$$t.dict; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZDIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 $$dict \
	    -artifact_prefix=$(FUZZDIR)/artifacts/$$t/ $(FUZZDIR)/corpus/$$t fuzz/corpus/$$t; \
	done

clean:
	rm -rf build
