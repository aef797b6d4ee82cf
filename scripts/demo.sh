#!/usr/bin/env bash
# THE main job: builds tapegen (Release) and fits the NIST StRD nonlinear
# regression problems with exact derivatives from a tape.  Extra arguments
# (options such as -v, dataset names such as Misra1a) go to nist_fit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"${TG_JOBS:-2}" --target nist_fit

# nist_fit takes its options before the data directory and dataset names
# after it: `bash scripts/demo.sh -v Misra1a` runs `nist_fit -v DATA Misra1a`.
opts=()
names=()
for a in "$@"; do
    if [[ $a == -* ]]; then opts+=("$a"); else names+=("$a"); fi
done
exec build/nist_fit "${opts[@]}" examples/nist_fit/data "${names[@]}"
