#!/usr/bin/env bash
# fuzz_load test: writes seed tapes with the tapegen command, adds the
# committed seeds, and fuzzes tg_tape_load for a bounded time.  Fails on
# any crash, leak, sanitizer report or broken property (libFuzzer exits
# non-zero and leaves the input under WORKDIR/artifacts/).
# usage: run.sh FUZZ_EXE TAPEGEN_EXE WORKDIR SECONDS
set -euo pipefail

fuzz=$1
tg=$2
work=$3
secs=$4
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

rm -rf "$work/seeds" "$work/artifacts"
mkdir -p "$work/seeds" "$work/corpus" "$work/artifacts"
cd "$work/seeds"

"$tg" example rosenbrock -o rosen2.tape >/dev/null
"$tg" example rosenbrock --n 4 --name "rosen4" -o rosen4.tape >/dev/null
"$tg" example polar -o polar.tape >/dev/null
"$tg" example logsumexp --n 3 -o lse.tape >/dev/null
for k in grad hess hvp; do
    "$tg" derive rosen2.tape --$k -o "rosen2_$k.tape" >/dev/null
    "$tg" derive lse.tape --$k --opt none -o "lse_$k.tape" >/dev/null
done
for k in jac jvp vjp; do
    "$tg" derive polar.tape --$k -o "polar_$k.tape" >/dev/null
done
"$tg" derive polar.tape --jac --wrt theta --opt max -o polar_jac_theta.tape >/dev/null
cp "$here"/corpus/* . 2>/dev/null || true
echo "fuzz_load: $(ls | wc -l) seed files, fuzzing for ${secs}s"

# New inputs accumulate in WORKDIR/corpus (kept between runs).
set +e
"$fuzz" -max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
    -dict="$here/load.dict" -artifact_prefix="$work/artifacts/" \
    "$work/corpus" "$work/seeds" >"$work/fuzz.log" 2>&1
status=$?
set -e
# The progress lines (NEW, REDUCE, pulse) are many: show the rest.
grep -Ev '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|RELOAD)' "$work/fuzz.log" | tail -n 80
if [[ $status -ne 0 ]] || ls "$work/artifacts" | grep -q .; then
    echo "fuzz_load: FAILED (libFuzzer exit $status); inputs in $work/artifacts:"
    ls -l "$work/artifacts"
    exit 1
fi
echo "fuzz_load: no crash, leak or property violation"
