# hmap — the commands people type. CMake does the real work; this file only sequences it.
#
#   make check   install missing Debian packages, build with gcc and run every test, then build with clang
#                under ASan+UBSan (build-asan/) and run every test again
#   make lab     build quietly (the build's output only if it fails), run the lab's tour, print the report's
#                path; LAB_ARGS is passed to hmap-lab (e.g. LAB_ARGS=delete, or LAB_ARGS='delete --n 10M')
#   make bench   build and run the benchmark (BENCH_QUICK=1 for the short run)
#   make build   configure build/ (gcc, RelWithDebInfo) and build it
#   make docs    the API reference from the public headers (doxygen): build/docs/html, build/docs/man
#   make install PREFIX=/usr/local   (the reference too, if `make docs` has built it)
#   make clean
#
# CTEST_ARGS is passed to every ctest run, e.g. make check CTEST_ARGS='-L packaging' or CTEST_ARGS='-LE slow'.

JOBS        ?= 2
PREFIX      ?= /usr/local
BUILD_TYPE  ?= RelWithDebInfo
CTEST_ARGS  ?=
LAB_ARGS    ?=
CTEST_TIMEOUT ?= 600
GCC         ?= gcc
GXX         ?= g++
CLANG       ?= clang
CLANGXX     ?= clang++

# Sanitizer runtime settings for the ASan build: fail on the first report, with a readable stack.
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1 \
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# BENCH_QUICK=1 reaches the benchmark whether given in the environment or on the make command line.
ifdef BENCH_QUICK
export BENCH_QUICK
endif

CTEST = ctest --output-on-failure --timeout $(CTEST_TIMEOUT) -j$(JOBS) $(CTEST_ARGS)

# Every recipe is a sequence of steps; parallelism lives inside cmake --build and ctest.
.NOTPARALLEL:
.PHONY: all deps build build-asan check lab bench docs install clean

all: build

deps:
	@bash scripts/deps

build:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_C_COMPILER=$(GCC) -DCMAKE_CXX_COMPILER=$(GXX)
	cmake --build build -j$(JOBS)

build-asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_C_COMPILER=$(CLANG) \
	      -DCMAKE_CXX_COMPILER=$(CLANGXX) -DHMAP_SANITIZE=ON
	cmake --build build-asan -j$(JOBS)

check: deps
	$(MAKE) --no-print-directory build
	cd build && $(CTEST)
	$(MAKE) --no-print-directory build-asan
	cd build-asan && $(SAN_ENV) $(CTEST)

# The lab's build is quiet: its log is shown only when it fails, so the lab's first line is the first line.
lab: deps
	@log=$$(mktemp); \
	if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_C_COMPILER=$(GCC) \
	             -DCMAKE_CXX_COMPILER=$(GXX) && cmake --build build -j$(JOBS) --target hmap-lab; } >$$log 2>&1; then \
	    cat $$log; rm -f $$log; echo "make lab: the build failed (its output is above)" >&2; exit 1; \
	fi; rm -f $$log
	@./build/tools/lab/hmap-lab $(LAB_ARGS)

bench: deps build
	./build/bench/hmap-bench

docs: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_C_COMPILER=$(GCC) -DCMAKE_CXX_COMPILER=$(GXX)
	cmake --build build --target hmap_docs

install:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build build -j$(JOBS)
	cmake --install build --prefix $(PREFIX)

clean:
	rm -rf build build-asan
