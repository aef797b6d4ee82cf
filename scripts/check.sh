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
    env "${envs[@]}" ctest --test-dir "$dir" --output-on-failure
}

run_build build -- -DCMAKE_BUILD_TYPE=Release -DTG_SANITIZE=OFF
release_count=$last_count

run_build build-asan ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 -- \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTG_SANITIZE=ON
asan_count=$last_count

echo
echo "check: $((release_count + asan_count)) passed, 0 failed"
if [[ $release_count -eq $asan_count ]]; then
    echo "check: all $release_count test suites passed in both builds"
else
    echo "check: all test suites passed in both builds ($release_count release, $asan_count asan)"
fi
