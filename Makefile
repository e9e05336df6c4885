# The two commands: `make run` serves the PCM app on http://localhost:8080, `make test` runs every test.
.PHONY: run test build build-test deps web bench clean

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

clean:
	rm -rf build
