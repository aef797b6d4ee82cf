#!/usr/bin/env bash
# THE main job: builds tapegen (Release) and fits the NIST StRD nonlinear
# regression problems with exact derivatives from a tape.  Then Ipopt
# solves the Hock-Schittkowski problems and Luksan-Vlcek 1 (n = 10^3, 10^4,
# 10^5) with every derivative from tapegen's sparse calls
# (examples/ipopt_nlp; --no-ipopt or TG_DEMO_IPOPT=0 skips it).  Then the Rust
# check: every fitted model's residual and Jacobian tapes are exported to one
# Rust crate (build/nist_rust), built with cargo, run at the fitted
# parameters and compared with the C interpreter.  Last, examples/mpc: a
# horizon-500 MPC of a kinematic bicycle with the horizon kept as one loop
# (tg_scan), checked against the unrolled tape and central differences,
# solved by projected gradient, its gradient as a Rust kernel (build/mpc_rust)
# compared with C.  Without cargo the Rust
# part is skipped (and the demo still succeeds); --no-rust or TG_DEMO_RUST=0
# skips it too.  Extra arguments (options such as -v, dataset names such as
# Misra1a) go to nist_fit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"${TG_JOBS:-2}" --target nist_fit mpc
# The Ipopt example exists when CMake found Ipopt (install-deps installs it).
ipopt=1
[[ ${TG_DEMO_IPOPT:-1} == 0 ]] && ipopt=0
for a in "$@"; do [[ $a == --no-ipopt ]] && ipopt=0; done
if [[ $ipopt -eq 1 ]]; then
    # the whole target list first: `| grep -q` would stop reading at the
    # match, and the generator's SIGPIPE then fails the pipe (pipefail)
    targets=$(cmake --build build --target help)
    if grep -q 'ipopt_nlp' <<<"$targets"; then
        cmake --build build -j"${TG_JOBS:-2}" --target ipopt_nlp
    else
        echo "demo: Ipopt was not found by CMake (Debian coinor-libipopt-dev); the Ipopt part is skipped"
        ipopt=0
    fi
fi

# nist_fit takes its options before the data directory and dataset names
# after it: `bash scripts/demo.sh -v Misra1a` runs `nist_fit -v DATA Misra1a`.
opts=()
names=()
rust=(--rust build/nist_rust)
[[ ${TG_DEMO_RUST:-1} == 0 ]] && rust=()
for a in "$@"; do
    if [[ $a == --no-rust ]]; then rust=()
    elif [[ $a == --no-ipopt ]]; then :
    elif [[ $a == -* ]]; then opts+=("$a")
    else names+=("$a"); fi
done

[[ ${#rust[@]} -eq 0 ]] && echo "demo: the Rust part is skipped (--no-rust or TG_DEMO_RUST=0)"
rc=0
build/nist_fit "${opts[@]}" "${rust[@]}" examples/nist_fit/data "${names[@]}" || rc=$?
case $rc in
    77) echo "demo: cargo was not found, so the Rust part was skipped (the fits above are complete)"
        rc=0 ;;
    3)  echo "demo: the Rust check FAILED (see above; the fits themselves are complete)" ;;
esac
if [[ $ipopt -eq 1 ]]; then
    echo
    echo "== Ipopt with tapegen derivatives (examples/ipopt_nlp)"
    build/ipopt_nlp || { echo "demo: the Ipopt example FAILED (a problem missed its optimum)"; rc=1; }
fi
echo
echo "== MPC with the horizon kept as one loop in the tape (examples/mpc)"
mpc_rust=(--rust build/mpc_rust)
[[ ${#rust[@]} -eq 0 ]] && mpc_rust=()
mrc=0
build/mpc --N 500 --iters 300 -q "${mpc_rust[@]}" || mrc=$?
case $mrc in
    0)  ;;
    77) echo "demo: cargo was not found, so the MPC Rust kernel was not built (the rest is complete)" ;;
    3)  echo "demo: the MPC Rust kernel FAILED (see above)"; rc=1 ;;
    *)  echo "demo: the MPC example FAILED"; rc=1 ;;
esac
exit "$rc"
