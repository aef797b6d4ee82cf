#!/usr/bin/env bash
# tests/test_bench_smoke.sh TGBENCH WORKDIR -- the bench_smoke CTest.
# Runs the benchmark harness in --smoke mode (every system on the smallest
# sizes: hand-written C checked against central differences, tapegen's
# simple API, _ws variants, derivative tapes and batches, ADOL-C when it is
# built in, central differences), then the report step on its output.
# Fails when any system disagrees with the hand-written derivatives.
set -euo pipefail

tgbench=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"     # ADOL-C may write tape files into the working directory

start=$(date +%s)
"$tgbench" --smoke --csv smoke.csv
"$tgbench" --report report smoke.csv >/dev/null

for f in report/results.md report/results.csv report/results.svg; do
    if [[ ! -s $f ]]; then
        echo "bench_smoke: $f missing or empty" >&2
        exit 1
    fi
done
if grep -q 'FAILED' smoke.csv; then
    echo "bench_smoke: a check failed (smoke.csv)" >&2
    exit 1
fi

# The loop variants (issue 11) ran and were checked: W1 as a map and W3 as
# a scan (f and gradient; a path that is not available would show as a
# "not available" metric row instead of a time row).
for row in '^time,W1 rosenbrock,n=100,tapegen loop,f,' '^time,W1 rosenbrock,n=100,tapegen loop,grad,' \
           '^time,W3 lorenz_rk4 scan,steps=100,tapegen loop,f,' \
           '^time,W3 lorenz_rk4 scan,steps=100,tapegen loop,grad,'; do
    if ! grep -q "$row" smoke.csv; then
        echo "bench_smoke: no row $row in smoke.csv (loop variant not run):" >&2
        grep 'not available' smoke.csv >&2 || true
        exit 1
    fi
done

# The checks themselves: a gradient off by 1e-7 (relative) must be caught.
set +e
"$tgbench" --smoke --workload w1 --n 2 --no-adolc --inject-mismatch > inject.log 2>&1
rc=$?
set -e
if [[ $rc -ne 1 ]] || ! grep -q 'CHECK FAILED: W1 rosenbrock n=2: tapegen grad' inject.log; then
    echo "bench_smoke: an injected mismatch was not caught (exit status $rc):" >&2
    cat inject.log >&2
    exit 1
fi
echo "bench_smoke: ok ($(( $(date +%s) - start )) s)"
