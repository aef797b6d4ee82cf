#!/usr/bin/env bash
# Installs the Debian packages tapegen needs to build, test and run its
# examples, if any is missing.  Runs apt-get update only when something has
# to be installed.  Needs root (or sudo).
set -euo pipefail

packages=(build-essential cmake pkg-config libcriterion-dev libcminpack-dev librust-libm-dev
          libcolpack-dev)   # libcolpack-dev: the colouring reference of tests/colpack
# ADOL-C, the reference the benchmarks compare with (bench/; optional: the
# harness builds and its smoke test runs without it).
packages+=(libadolc-dev)
# Ipopt (examples/ipopt_nlp: the nonlinear programs solved with tapegen's
# sparse derivatives, run by scripts/demo.sh and the ipopt_nlp_solves test).
packages+=(coinor-libipopt-dev)
# Graphviz (the CLI test draws `tapegen dot` output), clang and its runtime
# (the libFuzzer build in scripts/check.sh).
packages+=(graphviz clang libclang-rt-14-dev)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: missing ${missing[*]} and apt-get is not available;" \
         "install them with your package manager" >&2
    exit 1
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "install-deps: missing ${missing[*]}; run as root or install them first" >&2
        exit 1
    fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
