#!/usr/bin/env bash
# install_consumer: install an already-built tree into a temporary prefix,
# check the installed layout (README.md, "Building and installing"), then build and run a small
# consumer against it twice: with find_package(tapegen) and with pkg-config.
#
# usage: run.sh CMAKE BUILD_DIR CONFIG CC "EXTRA_FLAGS"
#   EXTRA_FLAGS: compile/link flags the consumer needs too (the sanitizers
#   when the library was built with them); may be empty.
set -euo pipefail

cmake_exe=$1
build_dir=$2
config=${3:-Release}
cc=$4
extra_flags=${5:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/tapegen-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

step() { printf '\n== %s\n' "$*"; }

step "install $build_dir into $prefix"
"$cmake_exe" --install "$build_dir" --prefix "$prefix" --config "${config:-Release}"

step "check the installed layout"
missing=0
for f in include/tapegen.h include/tapegen/ops.def lib/pkgconfig/tapegen.pc \
         lib/cmake/tapegen/tapegenConfig.cmake \
         lib/cmake/tapegen/tapegenConfigVersion.cmake \
         lib/cmake/tapegen/tapegenTargets.cmake bin/tapegen; do
    if [[ -e $prefix/$f ]]; then echo "ok: $f"; else echo "MISSING: $f"; missing=1; fi
done
if [[ ! -e $prefix/lib/libtapegen.a && ! -e $prefix/lib/libtapegen.so ]]; then
    echo "MISSING: lib/libtapegen.a or lib/libtapegen.so"
    missing=1
fi
[[ $missing -eq 0 ]] || { echo "install_consumer: installed layout is incomplete"; exit 1; }

# A shared library must be found at run time from the temporary prefix
# (by the installed tapegen too).
export LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$prefix/bin/tapegen" --version

step "consumer with find_package(tapegen)"
"$cmake_exe" -S "$here/consumer" -B "$work/consumer-build" \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE="${config:-Release}" \
    -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS="$extra_flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$extra_flags"
"$cmake_exe" --build "$work/consumer-build" --config "${config:-Release}"
consumer=$work/consumer-build/consumer
[[ -x $consumer ]] || consumer=$work/consumer-build/${config:-Release}/consumer
"$consumer"

step "consumer with pkg-config"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pc_flags=$(pkg-config --cflags --libs tapegen)
echo "pkg-config --cflags --libs tapegen: $pc_flags"
# shellcheck disable=SC2086  # word splitting of the flags is intended
"$cc" -std=c11 -Wall -Wextra -Werror $extra_flags -o "$work/consumer-pc" \
    "$here/consumer/main.c" $pc_flags
"$work/consumer-pc"

echo
echo "install_consumer: passed"
