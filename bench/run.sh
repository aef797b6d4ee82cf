#!/usr/bin/env bash
# bench/run.sh -- builds the benchmark harness and runs every workload.
#
#   bash bench/run.sh            full run (a few minutes)
#   bash bench/run.sh --quick    smallest sizes, short measurements (< 1 minute)
#   options: --no-rust (skip the generated-Rust comparison), --no-adolc,
#            --loops (only what issue 11 measures: W1 at n = 1000 and 10^5
#            with W1 as a map, W3 as a scan at 10^3 and 10^5 steps, the
#            generated Rust; with --quick: n = 1000, 10^3 and 10^4 steps)
#
# Builds tapegen and tgbench in build-bench/ (Release), runs one tgbench
# process per workload and size (every system side by side in it), the
# memory probes, the generated-Rust comparison (when cargo is there), and
# writes bench/results/results.md, results.csv and results.svg.  Exits
# non-zero when any system disagrees with the hand-written derivatives or a
# generated crate does not compile (the report is written all the same).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
quick=0
loops=0
rust=1
extra=()
for a in "$@"; do
    case $a in
        --quick) quick=1 ;;
        --loops) loops=1 ;;
        --no-rust) rust=0 ;;
        --no-adolc) extra+=(--no-adolc) ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $a" >&2; exit 2 ;;
    esac
done

build=$root/build-bench
out=$root/bench/results
work=$build/bench-run          # tgbench's working directory (ADOL-C may write tape files)
raw=$work/raw
logs=$work/logs
jobs=${TG_JOBS:-2}
t_start=$(date +%s)
failed=0
failures=()

banner() { printf '\n==== %s\n' "$*"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# CSV rows written by this script (same columns as tgbench's).
info_row() {   # KEY VALUE
    local v=${2//,/;}
    printf 'info,,,%s,,,,,,,,,,,,,,,,,,,%s\n' "$1" "$v" >> "$raw/info.csv"
}
metric_row() { # WORKLOAD SIZE SYSTEM NAME UNIT VALUE NOTE  (to $metric_csv)
    local note=${7//,/;}
    printf 'metric,%s,%s,%s,%s,%s,,,%s,,,,,,,,,,,,,,%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$note" \
        >> "${metric_csv:-$raw/rust.csv}"
}

banner "build ($build, Release)"
mkdir -p "$build"
# Examples on: the Ipopt example (examples/ipopt_nlp) gives the LV1 figures.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTG_BUILD_TESTS=OFF \
    -DTG_BUILD_EXAMPLES=ON > "$build/configure.log" || { cat "$build/configure.log"; exit 1; }
grep -E 'tapegen bench:' "$build/configure.log" || true
cmake --build "$build" -j"$jobs" --target tgbench > "$build/build.log" 2>&1 ||
    { cat "$build/build.log"; exit 1; }
tgbench=$build/bench/tgbench

rm -rf "$work"
mkdir -p "$raw" "$logs" "$out"
: > "$raw/info.csv"
mode=()
if [[ $quick -eq 1 ]]; then
    mode=(--quick)
    info_row mode "quick (each measurement >= 0.02 s; 3 rounds; smallest sizes)"
else
    info_row mode "full (each measurement >= 0.2 s; 7 rounds)"
fi
info_row date "$(date -u '+%Y-%m-%d %H:%M UTC')"
info_row command "bash bench/run.sh $*"
info_row cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
info_row cores "$(nproc)"
info_row compiler "$(cc --version | head -1)"
info_row tapegen "$(sed -n 's/^#define TG_VERSION_STRING "\(.*\)"/\1/p' include/tapegen.h) (git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src include 2>/dev/null || echo ', src/include modified'))"
info_row adolc "$(dpkg-query -W -f='${Version}' libadolc-dev 2>/dev/null || echo 'not installed') $(grep -q 'ADOL-C .* found' "$build/configure.log" && echo '(built in)' || echo '(not built in)')"
info_row openmp "$(grep -o 'openmp=[A-Z]*' "$build/configure.log" | head -1); OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# run NAME ARGS...: one tgbench process
run() {
    local name=$1
    shift
    local t0
    t0=$(now)
    banner "$name"
    if (cd "$work" && "$tgbench" "${mode[@]}" "${extra[@]}" "$@" --csv "$raw/$name.csv") \
        > "$logs/$name.log" 2>&1; then
        grep -v '^metric' "$logs/$name.log" || true
    else
        grep -v '^metric' "$logs/$name.log" || true
        echo "run.sh: $name FAILED (see $logs/$name.log)"
        failed=1
        failures+=("$name")
    fi
    echo "($name: $(elapsed "$t0" "$(now)") s)"
}

if [[ $quick -eq 1 ]]; then
    w1_sizes=(2 10 100)
    w4_sizes=(100)
    w3s_sizes=(1000 10000)
else
    w1_sizes=(2 10 100 1000 100000)
    w4_sizes=(100 1000)
    w3s_sizes=(1000 100000)
fi
if [[ $loops -eq 1 ]]; then
    if [[ $quick -eq 1 ]]; then w1_sizes=(1000); else w1_sizes=(1000 100000); fi
fi
for n in "${w1_sizes[@]}"; do
    run "w1_n$n" --workload w1 --n "$n"
done
# Loops kept in the tape (issue 11): W3 as a scan (W1 as a map runs inside
# the W1 processes above); peak-memory probes are child processes of it.
for n in "${w3s_sizes[@]}"; do
    run "w3s_n$n" --workload w3s --n "$n"
done
if [[ $loops -eq 0 ]]; then
    run w2 --workload w2
    run w3 --workload w3
    for n in "${w4_sizes[@]}"; do
        run "w4_n$n" --workload w4 --n "$n"
    done
    # Sparse derivatives (issue 10): W1's Hessian and W4's Jacobian.
    if [[ $quick -eq 1 ]]; then sparse_sizes=(1000); else sparse_sizes=(1000 10000 100000); fi
    for n in "${sparse_sizes[@]}"; do
        run "w1s_n$n" --workload w1s --n "$n"
        run "w4s_n$n" --workload w4s --n "$n"
    done

    # Peak RSS of W1 n = 100000 with one system per process.
    for sys in hand tapegen adolc; do
        if [[ $sys == adolc && ( ${#extra[@]} -gt 0 || ! $(grep -c 'ADOL-C .* found' "$build/configure.log") -gt 0 ) ]]; then
            continue
        fi
        banner "memprobe $sys"
        (cd "$work" && "$tgbench" --memprobe "$sys" --n 100000 --csv "$raw/memprobe_$sys.csv") ||
            { failed=1; failures+=("memprobe_$sys"); }
    done
fi

# Generated Rust: W1 n = 1000 and W2 gradient kernels vs hand-written Rust.
: > "$raw/rust.csv"
cargo=$(command -v cargo || true)
if [[ -z $cargo && -x ${HOME:-/root}/.cargo/bin/cargo ]]; then
    cargo=${HOME:-/root}/.cargo/bin/cargo
fi
if [[ -z $cargo && -x /root/.cargo/bin/cargo ]]; then
    cargo=/root/.cargo/bin/cargo
fi
if [[ $rust -eq 0 ]]; then
    info_row rust "Generated Rust: skipped (--no-rust)."
elif [[ -z $cargo ]]; then
    echo "run.sh: cargo not found (PATH, ~/.cargo/bin): skipping the generated-Rust comparison"
    info_row rust "Generated Rust: SKIPPED - cargo not found (PATH or ~/.cargo/bin)."
else
    export PATH="$(dirname "$cargo"):$PATH"
    rdir=$build/rust
    banner "generated Rust ($("$cargo" --version), $(rustc --version 2>/dev/null || echo 'rustc ?'))"
    info_row rustc "$(rustc --version 2>/dev/null || echo '?')"
    rm -rf "$rdir/gen" "$rdir/runner" "$rdir/target"
    mkdir -p "$rdir/.cargo"
    cat > "$rdir/.cargo/config.toml" <<'TOML'
# Offline: crates.io is replaced by Debian's packaged crates.
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "/usr/share/cargo/registry"

[net]
offline = true
TOML
    export CARGO_TARGET_DIR=$rdir/target
    if (cd "$work" && "$tgbench" --rust-gen "$rdir/gen" --n 1000 --csv "$raw/rustgen.csv") \
        > "$logs/rustgen.log" 2>&1; then
        grep -E 'lines of Rust|gen: total|work_len' "$logs/rustgen.log" || true
        cp -r "$root/bench/rust/runner" "$rdir/runner"
        # First `cargo check` each generated crate (type checking only, fast),
        # so that one that does not compile is reported and left out; then
        # one clean `cargo build --release` of the runner with the others.
        features=()
        declare -A wl_of=([w1]="W1 rosenbrock" [w2]="W2 mlp")
        declare -A size_of=([w1]="n=1000" [w2]="p=433")
        for w in w1 w2; do
            if (cd "$rdir/gen/${w}_grad" && "$cargo" check --release) > "$logs/check_$w.log" 2>&1; then
                features+=("$w")
            else
                err=$(grep -m1 -E '^error' "$logs/check_$w.log" | tr -d '`' | cut -c1-120)
                loc=$(grep -m1 -E '^ *--> ' "$logs/check_$w.log" | sed 's/^ *--> //; s|.*/gen/|gen/|')
                nerr=$(grep -c -E '^error\[' "$logs/check_$w.log" || true)
                echo "run.sh: the generated ${wl_of[$w]} crate does not compile ($nerr errors): $err at $loc"
                grep -E '^error|-->' "$logs/check_$w.log" | head -6
                metric_row "${wl_of[$w]}" "${size_of[$w]}" "Rust generated" "cargo build" status 0 \
                    "FAILED: generated crate does not compile ($nerr errors): $err at $loc (log: build-bench/bench-run/logs/check_$w.log)"
                failed=1
                failures+=("rust_$w (generated crate does not compile)")
            fi
        done
        # Loops kept in the tape (issue 11): the W1-as-a-map and W3-as-a-scan
        # gradient crates, when tg_rust_crate could emit them (rustgen.log
        # says why not otherwise; the runner then leaves them out).  Each is
        # built alone first, clean, timed: the build-time target.
        declare -A lwl=([w1m]="W1 rosenbrock" [w3s]="W3 lorenz_rk4 scan" [w3s5]="W3 lorenz_rk4 scan")
        declare -A lsz=([w1m]="n=1000" [w3s]="steps=1000" [w3s5]="steps=100000")
        for w in w1m w3s w3s5; do
            crate=$rdir/gen/${w}_grad
            if [[ ! -f $crate/Cargo.toml ]]; then
                echo "run.sh: no generated ${w}_grad crate (see $logs/rustgen.log): left out"
                sed -i "/^${w}_grad = /d; /^${w} = /d" "$rdir/runner/Cargo.toml"
                continue
            fi
            rm -rf "$rdir/target-$w"
            t0=$(now)
            if (cd "$crate" && CARGO_TARGET_DIR="$rdir/target-$w" "$cargo" build --release) \
                    > "$logs/build_$w.log" 2>&1; then
                tb=$(elapsed "$t0" "$(now)")
                lines=$(wc -l < "$crate/src/lib.rs")
                echo "cargo build --release of ${w}_grad alone (clean): $tb s, $lines lines of Rust"
                metric_row "${lwl[$w]}" "${lsz[$w]}" "Rust generated loop" "cargo build crate" s "$tb" \
                    "clean cargo build --release of the generated crate alone; $lines lines in src/lib.rs"
                features+=("$w")
            else
                err=$(grep -m1 -E '^error' "$logs/build_$w.log" | tr -d '`' | cut -c1-120)
                echo "run.sh: the generated ${w}_grad crate does not build: $err"
                metric_row "${lwl[$w]}" "${lsz[$w]}" "Rust generated loop" "cargo build crate" status 0 \
                    "FAILED: generated crate does not build: $err (log: build-bench/bench-run/logs/build_$w.log)"
                sed -i "/^${w}_grad = /d; /^${w} = /d" "$rdir/runner/Cargo.toml"
                failed=1
                failures+=("rust_$w (generated crate does not build)")
            fi
        done
        # The runner always builds: it checks and times the hand-written Rust
        # RK4 adjoint (W3) whatever was generated.
        rm -rf "$rdir/target"
        fargs=()
        if [[ ${#features[@]} -gt 0 ]]; then fargs=(--features "$(IFS=,; echo "${features[*]}")"); fi
        t0=$(now)
        runner_ok=0
        if (cd "$rdir/runner" && "$cargo" build --release "${fargs[@]}") > "$logs/cargo.log" 2>&1; then
            runner_ok=1
            tb=$(elapsed "$t0" "$(now)")
            echo "cargo build --release (clean, features ${features[*]:-none}): $tb s"
            for w in "${features[@]}"; do
                [[ $w == w1 || $w == w2 ]] || continue
                metric_row "${wl_of[$w]}" "${size_of[$w]}" "Rust generated" "cargo build" s "$tb" \
                    "clean build of the runner with generated crate(s) ${features[*]}"
            done
        else
            cat "$logs/cargo.log"
            for w in "${features[@]}"; do
                [[ $w == w1 || $w == w2 ]] || continue
                metric_row "${wl_of[$w]}" "${size_of[$w]}" "Rust generated" "cargo build" status 0 \
                    "FAILED: the runner did not build (log: build-bench/bench-run/logs/cargo.log)"
            done
            failed=1
            failures+=("rust runner build")
        fi
        if [[ $runner_ok -eq 1 ]]; then
            rargs=()
            if [[ $quick -eq 1 ]]; then rargs=(--rounds 3 --min-time 0.02); fi
            if "$rdir/target/release/tgbench_rust" "$rdir/gen/data" "${rargs[@]}" >> "$raw/rust.csv"; then
                grep -E '^ratio' "$raw/rust.csv" | cut -d, -f2,3,4,9-11 | sed 's/^/  generated\/hand-written Rust: /'
                grep -E '^time,W3 lorenz_rk4 scan' "$raw/rust.csv" | cut -d, -f2-4,9 | sed 's/^/  W3 scan Rust (CPU s per gradient): /'
            else
                failed=1
                failures+=("rust runner")
            fi
        fi
        info_row rust "Generated Rust: tg_gradient_tape -> tg_tape_optimize(TG_OPT_BASIC) -> tg_rust_crate; runner bench/rust/runner (cargo build --release; default profile); $("$cargo" --version)."
    else
        cat "$logs/rustgen.log"
        failed=1
        failures+=("rust-gen")
    fi
fi

# Ipopt on Luksan-Vlcek 1 with every derivative from tapegen: status,
# iterations, time in the derivative callbacks and its share of IpoptSolve,
# peak RSS (examples/ipopt_nlp).  Quick mode: n = 1000 only.
: > "$raw/ipopt.csv"
if [[ $loops -eq 1 ]]; then
    info_row ipopt "Ipopt LV1: not run (--loops)."
elif grep -q 'Ipopt not found' "$build/configure.log"; then
    echo "run.sh: Ipopt not found (coinor-libipopt-dev): skipping the LV1 runs"
    info_row ipopt "Ipopt LV1: SKIPPED - Ipopt not found (Debian coinor-libipopt-dev)."
else
    if [[ $quick -eq 1 ]]; then lv1_sizes=1000; else lv1_sizes=1000,10000,100000; fi
    banner "Ipopt LV1 (n = $lv1_sizes)"
    t0=$(now)
    if ! cmake --build "$build" -j"$jobs" --target ipopt_nlp > "$logs/ipopt_build.log" 2>&1; then
        cat "$logs/ipopt_build.log" | tail -30
        echo "run.sh: building examples/ipopt_nlp FAILED"
        failed=1
        failures+=("ipopt_nlp build")
    fi
    # Two runs: the numeric sparse calls (the example's default) and the
    # sparse derivative tapes (--tapes).
    for mode in calls tapes; do
        [[ -x $build/ipopt_nlp ]] || break
        wl="Ipopt LV1"; margs=()
        [[ $mode == tapes ]] && { wl="Ipopt LV1 tapes"; margs=(--tapes); }
        csvf=$work/ipopt_lv1_$mode.csv
        if (cd "$work" && "$build/ipopt_nlp" --only LV1 --lv1 "$lv1_sizes" "${margs[@]}" --csv "$csvf") \
                > "$logs/ipopt_$mode.log" 2>&1; then
            grep -E '^(LV1|  LV1)' "$logs/ipopt_$mode.log" | sed "s/^/  [$mode] /"
        else
            tail -30 "$logs/ipopt_$mode.log"
            echo "run.sh: the Ipopt LV1 runs ($mode) FAILED (see $logs/ipopt_$mode.log)"
            failed=1
            failures+=("ipopt_lv1_$mode")
        fi
        [[ -s $csvf ]] || continue
        # One metric row per figure (columns of ipopt_nlp --csv).
        metric_csv=$raw/ipopt.csv
        while IFS=, read -r prob n m status iter obj opt relerr deriv solve share rec pat jnnz jcol hnnz hcol peak chk derivs; do
            [[ $prob == LV1 ]] || continue
            sz="n=$n"
            solved=0; [[ $status == Solve_Succeeded || $status == Solved_To_Acceptable ]] && solved=1
            metric_row "$wl" "$sz" tapegen "solved" "" "$solved" "$status after $iter iterations; m = $m"
            metric_row "$wl" "$sz" tapegen "iterations" "" "$iter" "Ipopt iterations"
            metric_row "$wl" "$sz" tapegen "objective" "" "$obj" "known optimum $opt; rel. error $relerr"
            metric_row "$wl" "$sz" tapegen "derivative callbacks" s "$deriv" "CPU time in eval_grad_f + eval_jac_g + eval_h ($derivs)"
            metric_row "$wl" "$sz" tapegen "IpoptSolve" s "$solve" "CPU time of IpoptSolve"
            metric_row "$wl" "$sz" tapegen "derivative share" % "$share" "derivative callbacks / IpoptSolve"
            metric_row "$wl" "$sz" tapegen "setup" s "$(awk -v a="$rec" -v b="$pat" 'BEGIN { printf "%.6f", a + b }')" \
                "recording $rec s + patterns$([[ $mode == tapes ]] && echo ' and derivative tapes') $pat s"
            metric_row "$wl" "$sz" tapegen "peak RSS" B "$(awk -v p="$peak" 'BEGIN { printf "%.0f", p * 1048576 }')" \
                "getrusage max RSS of ipopt_nlp after this run (sizes run in increasing order)"
            metric_row "$wl" "$sz" tapegen "pattern sizes" "" "$jnnz" "Jacobian nnz $jnnz in $jcol colours; Hessian nnz $hnnz in $hcol colours"
        done < "$csvf"
        unset metric_csv
    done
    info_row ipopt "Ipopt LV1: examples/ipopt_nlp --only LV1 --lv1 $lv1_sizes [--tapes] (Ipopt $(pkg-config --modversion ipopt 2>/dev/null || echo '?')); $(elapsed "$t0" "$(now)") s."
fi

info_row load "load average $load_start at the start; $(cut -d' ' -f1-3 /proc/loadavg) at the end"
info_row duration "$(( $(date +%s) - t_start )) s"

banner "report"
"$tgbench" --report "$out" "$raw"/*.csv || failed=1
echo "results: bench/results/results.md, results.csv, results.svg ($(( $(date +%s) - t_start )) s in all)"
if [[ $failed -ne 0 ]]; then
    echo "run.sh: FAILED: ${failures[*]:-see above}" >&2
    exit 1
fi
