# SPDX-License-Identifier: MIT
# hmap — the commands people type. CMake does the real work; this file only sequences it.
#
#   make check   install missing Debian packages, build with gcc and run every test, then build with clang
#                under ASan+UBSan (build-asan/) and run every test again (there also the fuzzer, 60 s)
#   make check-tsan      clang ThreadSanitizer build (build-tsan/): the tests that start threads
#   make check-valgrind  gcc build run under valgrind memcheck (build-valgrind/): the tests labelled
#                        `valgrind`, with their sizes cut down (VALGRIND_ENV)
#   make fuzz    run the libFuzzer target for FUZZ_SECONDS (default 60) in the ASan+UBSan build
#   make fuzz-coverage  the same run in a coverage build (build-fuzzcov/): llvm-cov report of src/
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
FUZZ_SECONDS ?= 60
GCC         ?= gcc
GXX         ?= g++
CLANG       ?= clang
CLANGXX     ?= clang++

# Sanitizer runtime settings for the ASan build: fail on the first report, with a readable stack.
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1 \
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# ThreadSanitizer: fail on the first report; the fork test's children start threads after a
# multi-threaded fork, which TSan refuses unless told otherwise, and take ~1 s each there (several on a
# loaded machine, beside the parent's busy threads): 50 of them, each given 30 s before it counts as hung.
TSAN_ENV = TSAN_OPTIONS=halt_on_error=1:die_after_fork=0:second_deadlock_stack=1 HMAP_FORK_CHILDREN=50 HMAP_FORK_CHILD_SECONDS=30

# Under memcheck everything runs ~50x slower: fewer operations for the differential test, every 4th
# allocation for the sweep. Leaks of definite and indirect kinds are errors.
VALGRIND_CMD = valgrind;--error-exitcode=99;--leak-check=full;--errors-for-leak-kinds=definite,indirect;-q
VALGRIND_ENV = HMAP_FUZZ_OPS=300000 HMAP_ALLOC_FAIL_STRIDE=4

FUZZ_RUN = -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -timeout=30

# BENCH_QUICK=1 reaches the benchmark whether given in the environment or on the make command line.
ifdef BENCH_QUICK
export BENCH_QUICK
endif

CTEST = ctest --output-on-failure --timeout $(CTEST_TIMEOUT) -j$(JOBS) $(CTEST_ARGS)

# Every recipe is a sequence of steps; parallelism lives inside cmake --build and ctest.
.NOTPARALLEL:
.PHONY: all deps build build-asan check check-tsan check-valgrind fuzz fuzz-coverage lab bench docs install clean

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

check-tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_C_COMPILER=$(CLANG) \
	      -DCMAKE_CXX_COMPILER=$(CLANGXX) -DHMAP_TSAN=ON
	cmake --build build-tsan -j$(JOBS)
	cd build-tsan && $(TSAN_ENV) $(CTEST) -L threads

check-valgrind: deps
	cmake -S . -B build-valgrind -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_C_COMPILER=$(GCC) \
	      -DCMAKE_CXX_COMPILER=$(GXX) "-DCMAKE_CROSSCOMPILING_EMULATOR=$(VALGRIND_CMD)"
	cmake --build build-valgrind -j$(JOBS)
	cd build-valgrind && $(VALGRIND_ENV) $(CTEST) -L valgrind

fuzz: deps build-asan
	cd build-asan && $(SAN_ENV) ./tests/fuzz/fuzz_map $(FUZZ_RUN) tests/fuzz/corpus-work ../tests/fuzz/corpus

fuzz-coverage: deps
	cmake -S . -B build-fuzzcov -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_C_COMPILER=$(CLANG) \
	      -DCMAKE_CXX_COMPILER=$(CLANGXX) -DHMAP_FUZZ_COVERAGE=ON
	cmake --build build-fuzzcov -j$(JOBS) --target fuzz_map
	rm -rf build-fuzzcov/cov && mkdir -p build-fuzzcov/cov/corpus
	cd build-fuzzcov && LLVM_PROFILE_FILE=cov/fuzz.profraw ./tests/fuzz/fuzz_map $(FUZZ_RUN) \
	      cov/corpus ../tests/fuzz/corpus
	llvm-profdata merge -o build-fuzzcov/cov/fuzz.profdata build-fuzzcov/cov/fuzz.profraw
	llvm-cov report build-fuzzcov/tests/fuzz/fuzz_map -instr-profile=build-fuzzcov/cov/fuzz.profdata $(CURDIR)/src

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
	rm -rf build build-asan build-tsan build-valgrind build-fuzzcov
