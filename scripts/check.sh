#!/usr/bin/env bash
# THE test command: builds tapegen twice and runs every test suite in both.
#   build/       Release, warnings are errors
#   build-asan/  RelWithDebInfo with AddressSanitizer + UBSan, warnings are errors
# Installs missing Debian packages first.  Exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
jobs=${TG_JOBS:-2}

bash scripts/install-deps.sh

banner() { printf '\n==== %s\n' "$*"; }

# run_build DIR CTEST_ENV... -- CMAKE_ARGS...
# Configures, builds and tests one build directory; sets `last_count` to the
# number of test suites it ran.
last_count=0
run_build() {
    local dir=$1
    shift
    local envs=()
    while [[ $1 != -- ]]; do envs+=("$1"); shift; done
    shift

    banner "configure $dir"
    cmake -S "$root" -B "$dir" -DTG_WERROR=ON -DTG_BUILD_TESTS=ON \
        -DTG_BUILD_EXAMPLES=ON -DTG_REQUIRE_CRITERION=ON "$@"

    banner "build $dir"
    cmake --build "$dir" -j"$jobs"

    last_count=$(ctest --test-dir "$dir" -N | sed -n 's/^Total Tests: *\([0-9][0-9]*\).*/\1/p')
    if [[ -z $last_count || $last_count -eq 0 ]]; then
        echo "check: no tests registered in $dir" >&2
        exit 1
    fi

    banner "test $dir ($last_count suites)"
    env "${envs[@]}" ctest --test-dir "$dir" --output-on-failure $ctest_parallel
}

# Release: each Criterion suite already runs its tests in parallel workers.
ctest_parallel=""
run_build build -- -DCMAKE_BUILD_TYPE=Release -DTG_SANITIZE=OFF
release_count=$last_count

# Sanitizers: suites run their tests one at a time (see CMakeLists.txt), so
# ctest runs suites side by side instead.
ctest_parallel="--parallel $jobs"
run_build build-asan ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 -- \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTG_SANITIZE=ON
asan_count=$last_count

# ThreadSanitizer: the library and the threads suite only (tsan_threads, see
# CMakeLists.txt), without OpenMP (libgomp is not instrumented).  Warnings
# are not errors here: this build exists to find races.
banner "configure build-tsan"
cmake -S "$root" -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTG_TSAN=ON \
    -DTG_OPENMP=OFF -DTG_BUILD_TESTS=OFF -DTG_BUILD_EXAMPLES=OFF
banner "build build-tsan (library + tsan_threads, tsan_lazy)"
cmake --build build-tsan -j"$jobs" --target tsan_threads tsan_lazy
banner "test build-tsan"
ctest --test-dir build-tsan -R '^tsan_' --output-on-failure
tsan_count=2

# Fuzzing: tg_tape_load under libFuzzer + ASan + UBSan for TG_FUZZ_SECONDS
# (default 60) from seeds written by the tapegen command.  Needs clang.
fuzz_count=0
if command -v clang >/dev/null 2>&1; then
    banner "configure build-fuzz (clang, libFuzzer)"
    cmake -S "$root" -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DTG_FUZZ=ON -DTG_FUZZ_SECONDS="${TG_FUZZ_SECONDS:-60}" -DTG_OPENMP=OFF \
        -DTG_BUILD_TESTS=OFF -DTG_BUILD_EXAMPLES=OFF
    banner "build build-fuzz"
    cmake --build build-fuzz -j"$jobs" --target fuzz_load tapegen_cli
    banner "test build-fuzz"
    ctest --test-dir build-fuzz -R '^fuzz_load$' --output-on-failure
    fuzz_count=1
else
    echo "check: clang not found; fuzz_load skipped (scripts/install-deps.sh installs it)"
fi
echo
echo "check: ThreadSanitizer suite ok; fuzz_load $([[ $fuzz_count -eq 1 ]] && echo ok || echo skipped)"

echo
echo "check: $((release_count + asan_count + tsan_count + fuzz_count)) passed, 0 failed"
if [[ $release_count -eq $asan_count ]]; then
    echo "check: all $release_count test suites passed in both builds"
else
    echo "check: all test suites passed in both builds ($release_count release, $asan_count asan)"
fi
