#!/usr/bin/env bash
# test_cli: every tapegen subcommand on tapes made with `tapegen example`:
# happy paths (exact numbers where they are known), exit code 1 with a
# message naming the file for missing, truncated, corrupted and foreign
# files, exit code 2 for bad command lines, Graphviz parsing `tapegen dot`
# (skipped with a message when dot is not installed), and a Rust crate.
# usage: test_cli.sh TAPEGEN_EXE
set -uo pipefail

exe=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
passed=0
failed=0
out=$work/out.txt
err=$work/err.txt

ok()   { passed=$((passed + 1)); echo "ok: $*"; }
fail() {
    failed=$((failed + 1))
    echo "FAIL: $*"
    sed 's/^/  stdout: /' "$out" | head -20
    sed 's/^/  stderr: /' "$err" | head -20
}

# t CODE ARGS...: runs tapegen ARGS, expects exit status CODE.
t() {
    local code=$1
    shift
    local rc=0
    "$exe" "$@" >"$out" 2>"$err" </dev/null || rc=$?
    if [[ $rc -ne $code ]]; then
        fail "tapegen $* exited $rc, expected $code"
        return 1
    fi
    return 0
}

# expect CODE STREAM REGEX ARGS...: exit status and a line of stdout/stderr.
expect() {
    local code=$1 stream=$2 regex=$3
    shift 3
    t "$code" "$@" || return
    local file=$out
    [[ $stream == err ]] && file=$err
    if grep -Eq -- "$regex" "$file"; then
        ok "tapegen $* -> $code, std$stream has /$regex/"
    else
        fail "tapegen $*: std$stream does not match /$regex/"
    fi
}

# same FILE1 FILE2 WHAT: byte-identical files.
same() {
    if cmp -s "$1" "$2"; then ok "$3"; else fail "$3 ($1 and $2 differ)"; fi
}

# ------------------------------------------------------------ example
expect 0 out 'r\.tape: tape "rosenbrock", 2 inputs, 1 output, [0-9]+ instructions' \
    example rosenbrock -o r.tape
expect 0 out 'r5\.tape: tape "rosen5", 5 inputs, 1 output' \
    example rosenbrock --n 5 --name rosen5 -o r5.tape
expect 0 out 'p\.tape: tape "polar", 2 inputs, 2 outputs' example polar -o p.tape
expect 0 out 'l\.tape: tape "logsumexp", 4 inputs, 1 output' example logsumexp --n 4 -o l.tape
t 0 example rosenbrock -o r_again.tape && same r.tape r_again.tape "example output is deterministic"
expect 0 out 'logsumexp' example --help
expect 2 err "unknown example 'nope'" example nope -o x.tape
expect 2 err "example 'polar' takes no --n" example polar --n 3 -o x.tape
expect 2 err "--n: 'x' is not an integer" example rosenbrock --n x -o x.tape
expect 2 err "--n: '1' is not an integer in 2\.\." example rosenbrock --n 1 -o x.tape
expect 2 err "option '-o/--output' is required" example rosenbrock
expect 1 err "cannot write $work/no/such/dir/x\.tape" example rosenbrock -o "$work/no/such/dir/x.tape"

# ------------------------------------------------------------ info
expect 0 out '^tape: +rosenbrock$' info r.tape
expect 0 out '^  0: x\[2\] at 0$' info r.tape
expect 0 out '^  0: f\[1\] at 0$' info r.tape
expect 0 out '^instructions: +[0-9]+$' info r.tape
expect 0 out '^  mul +4$' info r.tape
expect 0 out "^file bytes: +$(stat -c %s r.tape)\$" info r.tape
expect 0 out '^memory bytes: +[1-9][0-9]*$' info r.tape
expect 0 out '^  1: theta\[1\] at 1$' info p.tape
expect 0 out '^  0: xy\[2\] at 0$' info p.tape

# ------------------------------------------------------------ dump
expect 0 out '^tape "polar": 2 inputs, 2 outputs, 6 instructions$' dump p.tape
expect 0 out '^%2 = cos %1$' dump p.tape
expect 0 out '^xy\[1\] = %5$' dump p.tape

# ------------------------------------------------------------ dot
expect 0 out '^digraph "polar" \{$' dot p.tape
expect 0 out '^  n1 \[label="theta\[0\]", shape=box' dot p.tape
expect 0 out '^  n0 -> n3;$' dot p.tape
expect 0 out '^  n5 -> out1;$' dot p.tape
t 0 dot r.tape && cp "$out" dot1.txt
t 0 dot r.tape && cp "$out" dot2.txt
same dot1.txt dot2.txt "dot output is deterministic"
expect 0 out '\[label="1"\]' dot r.tape        # operand order of sub is marked
t 0 derive r5.tape --hess -o r5h.tape
if command -v dot >/dev/null 2>&1; then
    for f in r.tape p.tape r5h.tape; do
        if "$exe" dot "$f" | dot -Tsvg >"$f.svg" 2>"$err" && grep -q '<svg' "$f.svg"; then
            ok "tapegen dot $f | dot -Tsvg"
        else
            fail "tapegen dot $f | dot -Tsvg"
        fi
    done
else
    echo "skip: graphviz (dot) is not installed; tapegen dot output not parsed"
fi

# ------------------------------------------------------------ eval
# Rosenbrock at (-1.2, 1): f = 24.2, grad = (-215.6, -88), H = [[1330, 480], [480, 200]].
expect 0 out '^f = 24\.19999999999999[0-9]*$' eval r.tape --x -1.2,1
expect 0 out '^gradient = -215\.59999999999[0-9]* -87\.9999999999999[0-9]*$' eval r.tape --x -1.2,1 --grad
expect 0 out '^jacobian \(1 x 2\) =$' eval r.tape --x -1.2,1 --jac
expect 0 out '^hessian \(2 x 2\) =$' eval r.tape --x -1.2,1 --hess
expect 0 out '^  1330 480$' eval r.tape --x -1.2,1 --hess
expect 0 out '^  480 200$' eval r.tape --x=-1.2,1 --hess
expect 0 out '^hvp = 1330 480$' eval r.tape --x -1.2,1 --hvp 1,0
expect 0 out '^xy = 2 0$' eval p.tape --x 2,0
expect 0 out '^  0 2$' eval p.tape --x 2,0 --jac
expect 0 out '^jvp = 1 2$' eval p.tape --x 2,0 --jvp 1,1
expect 0 out '^vjp = 0 2$' eval p.tape --x 2,0 --vjp 0,1
expect 0 out '^f = inf$' eval l.tape --x inf,0,0,0
expect 2 err "option '--x' is required \(tape \"rosenbrock\" has 2 inputs\)" eval r.tape
expect 2 err '--x has 3 values; tape "rosenbrock" has 2 inputs' eval r.tape --x 1,2,3
expect 2 err "--x: 'abc' is not a number" eval r.tape --x 1,abc
expect 2 err "--x: '' is not a number" eval r.tape --x 1,
# numbers out of range are usage errors naming the option and the value
# (issue 9, defect 6); inf, nan and subnormal literals are numbers
expect 2 err "--x: '1e999' is out of range \\(beyond the largest double" eval r.tape --x 1,1e999
expect 2 err "--x: '-1e999' is out of range" eval r.tape --x -1e999,1
expect 2 err "--x: '1e-400' is out of range \\(nonzero, but below the smallest double" \
    eval r.tape --x 1e-400,1
expect 2 err "--x: '2e-324' is out of range" eval r.tape --x 2e-324,1
expect 2 err "--x: '1\\.5\\.2' is not a number" eval r.tape --x 1.5.2,1
expect 2 err "--x: '0x' is not a number" eval r.tape --x 0x,1
expect 2 err "--jvp: '1e999' is out of range" eval r.tape --x 1,1 --jvp 1e999,0
expect 2 err "--hvp: '1e-999' is out of range" eval r.tape --x 1,1 --hvp 1e-999,0
expect 2 err "--tol: '1e400' is out of range" check r.tape --x 1,1 --tol 1e400
expect 0 out '^f = inf$' eval l.tape --x inf,0,0,0
expect 0 out '^f = nan$' eval r.tape --x nan,1
expect 0 out '^f = 1$' eval r.tape --x 0e-999,0
expect 0 out '^f = 1$' eval r.tape --x 4.9406564584124654e-324,0
expect 0 out '^f = 1$' eval r.tape --x 3e-324,0
expect 2 err '--grad needs a tape with one output; "polar" has 2' eval p.tape --x 1,2 --grad
[[ ! -s $out ]] && ok "eval prints nothing before a usage error" || fail "eval printed values before a usage error"
expect 2 err '--hess needs a tape with one output' eval p.tape --x 1,2 --hess
expect 2 err '--vjp has 1 value; tape "polar" has 2 outputs' eval p.tape --x 1,2 --vjp 1
expect 2 err "option '--x' given twice" eval r.tape --x 1,2 --x 1,2
expect 2 err "option '--grad' takes no value" eval r.tape --x 1,2 --grad=1
expect 2 err "option '--x' needs a value" eval r.tape --x

# ------------------------------------------------------------ check
expect 0 out '^tolerance 1e-06: ok$' check r.tape --x -1.2,1
# a NaN central difference against a number is a NaN error, not inf (issue 9, defect 7)
expect 1 out '^worst error nan at output 0 \(f\[0\]\), input 0 \(x\[0\]\): tape inf, central difference nan$' \
    check r.tape --x inf,1
expect 1 out '^tolerance 1e-06: FAILED$' check r.tape --x inf,1
expect 0 out '^worst error 0 at .*: tape nan, central difference nan$' check r.tape --x nan,1
expect 0 out 'worst error .* at output 0 \(f\[0\]\), input [01] \(x\[[01]\]\)' check r.tape --x -1.2,1
expect 0 out '^tolerance 1e-06: ok$' check p.tape --x 2,0.5
expect 0 out 'output [01] \(xy\[[01]\]\), input [01] \((r|theta)\[0\]\)' check p.tape --x 2,0.5
expect 0 out '^tolerance 1e-06: ok$' check l.tape --x 0.1,0.2,-0.3,1
expect 0 out '^tolerance 1e-06: ok$' check r5.tape --x 0.5,-1,2,1.5,0.25
expect 1 out '^tolerance 0: FAILED$' check r.tape --x -1.2,1 --tol 0
expect 2 err "--tol: 'x' is not a number" check r.tape --x 1,1 --tol x
expect 2 err "--tol: '-1' is not one non-negative number" check r.tape --x 1,1 --tol -1
expect 2 err '--x has 1 value' check r.tape --x 1

# ------------------------------------------------------------ derive
expect 0 out 'rg\.tape: tape "rosenbrock_grad", 2 inputs, 2 outputs' derive r.tape --grad -o rg.tape
# a Hessian tape beyond the output limit is refused at once, before any
# work (issue 9, defect 3: 70000 inputs, 4.9e9 outputs used to run for
# minutes and take gigabytes); the test's time limit is the oracle
t 0 example rosenbrock --n 70000 -o big.tape && \
expect 1 err 'hess of "rosenbrock": derivative tape "rosenbrock_hess" would have 4900000000 outputs; a tape holds at most 4294967294' \
    derive big.tape --hess -o big_hess.tape
if [[ -e big_hess.tape ]]; then fail "a refused derivative left big_hess.tape"; else ok "no file for a refused derivative"; fi
rc=0
timeout 20 "$exe" derive big.tape --hess --wrt x -o big_hess.tape >"$out" 2>"$err" </dev/null || rc=$?
if [[ $rc -eq 1 ]]; then ok "the oversized Hessian is refused within 20 s"; else fail "derive --hess of 70000 inputs: exit $rc (124: still running after 20 s)"; fi
rm -f big.tape
expect 0 out '^grad = -215\.59999999999[0-9]* -87\.9999999999999[0-9]*$' eval rg.tape --x -1.2,1
expect 0 out 'rj\.tape: tape "rosenbrock_jac"' derive r.tape --jac --opt max -o rj.tape
expect 0 out 'rh\.tape: tape "rosenbrock_hess", 2 inputs, 4 outputs' derive r.tape --hess -o rh.tape
expect 0 out '^hess = 1330 480 480 200$' eval rh.tape --x -1.2,1
expect 0 out 'rv\.tape: tape "rosenbrock_hvp", 4 inputs, 2 outputs' derive r.tape --hvp --opt none -o rv.tape
expect 0 out '^hvp = 1330 480$' eval rv.tape --x -1.2,1,1,0
expect 0 out 'pjv\.tape: tape "polar_jvp", 4 inputs, 2 outputs' derive p.tape --jvp -o pjv.tape
expect 0 out '^jvp = 1 2$' eval pjv.tape --x 2,0,1,1
expect 0 out 'pvj\.tape: tape "polar_vjp", 4 inputs, 2 outputs' derive p.tape --vjp --level high -o pvj.tape
expect 0 out '^vjp = 0 2$' eval pvj.tape --x 2,0,0,1
expect 0 out 'pt\.tape: tape "polar_jac", 2 inputs, 2 outputs' derive p.tape --jac --wrt theta -o pt.tape
expect 0 out '^jac = -?0 2$' eval pt.tape --x 2,0
expect 0 out 'pr\.tape: tape "polar_jac", 2 inputs, 2 outputs' derive p.tape --jac --wrt 0 -o pr.tape
expect 0 out '^jac = 1 0$' eval pr.tape --x 2,0
expect 0 out '^tolerance 1e-06: ok$' check rg.tape --x -1.2,1        # gradient's Jacobian = Hessian
expect 0 out 'rjv\.tape: tape "rosenbrock_jac_vjp", 4 inputs, 2 outputs' derive rj.tape --vjp -o rjv.tape
expect 0 out '^vjp = 1330 480$' eval rjv.tape --x -1.2,1,1,0
expect 2 err 'missing the derivative' derive r.tape -o x.tape
expect 2 err 'got --grad and --jac' derive r.tape --grad --jac -o x.tape
expect 2 err "option '-o/--output' is required" derive r.tape --grad
expect 2 err "--wrt: tape \"polar\" has no input block 'phi' \(blocks: 0 'r', 1 'theta'\)" \
    derive p.tape --jac --wrt phi -o x.tape
expect 2 err "--wrt: tape \"polar\" has no input block '2'" derive p.tape --jac --wrt 2 -o x.tape
expect 2 err "--opt: unknown level 'ultra'" derive r.tape --grad --opt ultra -o x.tape
expect 2 err 'give --opt or --level, not both' derive r.tape --grad --opt max --level max -o x.tape
expect 2 err '--grad needs a tape with one output; "polar" has 2' derive p.tape --grad -o x.tape
expect 1 err "cannot write $work/nodir/x\.tape" derive r.tape --grad -o "$work/nodir/x.tape"

# ------------------------------------------------------------ sparse derivative tapes
expect 0 out 'b\.tape: tape "broyden", 10 inputs, 10 outputs' example broyden --n 10 -o b.tape
expect 0 out 'bsj\.tape: tape "broyden_sjac", 10 inputs, 28 outputs' derive b.tape --sparse-jac -o bsj.tape
# At x = 1 the nonzeros, row by row: (0,0) -1, (0,1) -2, then -1 -1 -2 per row, last row -1 -1.
expect 0 out '^jac = -1 -2( -1 -1 -2){8} -1 -1$' eval bsj.tape --x 1,1,1,1,1,1,1,1,1,1
expect 0 out 'r3\.tape: tape "rosenbrock", 3 inputs, 1 output' example rosenbrock --n 3 -o r3.tape
expect 0 out 'r3h\.tape: tape "rosenbrock_shess", 4 inputs, 5 outputs' derive r3.tape --sparse-hess -o r3h.tape
expect 0 out '^  1: w\[1\] at 3$' info r3h.tape
# Lower triangle of the Rosenbrock Hessian at x = 1 with weight 1: (0,0) 802,
# (1,0) -400, (1,1) 1002, (2,1) -400, (2,2) 200; weight 2 doubles it.
expect 0 out '^hess = 802 -400 1002 -400 200$' eval r3h.tape --x 1,1,1,1
expect 0 out '^hess = 1604 -800 2004 -800 400$' eval r3h.tape --x 1,1,1,2
expect 0 out 'psh\.tape: tape "polar_shess", 4 inputs, [0-9]+ outputs' derive p.tape --sparse-hess -o psh.tape
expect 0 out 'ptj\.tape: tape "polar_sjac", 2 inputs, 2 outputs' derive p.tape --sparse-jac --wrt theta -o ptj.tape
expect 2 err 'got --sparse-jac and --sparse-hess' derive b.tape --sparse-jac --sparse-hess -o x.tape
expect 2 err 'got --jac and --sparse-jac' derive b.tape --jac --sparse-jac -o x.tape
expect 0 out '--sparse-hess' derive --help

# ------------------------------------------------------------ info --sparsity
expect 0 out '^jacobian: +10 x 10, nnz 28 \(.*\), colours 3$' info b.tape --sparsity
expect 0 out '^hessian: +10 x 10 \(lower triangle stored\), nnz 10 \(.*\), colours 1$' info b.tape --sparsity
expect 0 out '^  ##\.{8}$' info b.tape --sparsity
expect 0 out '^  \.{4}###\.{3}$' info b.tape --sparsity
expect 0 out '^sparsity wrt: +all inputs \(10\)$' info b.tape --sparsity
t 0 example rosenbrock --n 10 -o r10.tape
expect 0 out '^jacobian: +1 x 10, nnz 10 ' info r10.tape --sparsity
expect 0 out '^hessian: +10 x 10 \(lower triangle stored\), nnz 19 \(.*\), colours 3$' info r10.tape --sparsity
expect 0 out '^  \.{3}###\.{4}$' info r10.tape --sparsity     # row 4 of the tridiagonal, mirrored
t 0 example rosenbrock --n 1000 -o r1000.tape
expect 0 out '^  \(downsampled to 32 x 64: ' info r1000.tape --sparsity
expect 0 out '^hessian: +1000 x 1000 \(lower triangle stored\), nnz 1999 \(.*\), colours 3$' \
    info r1000.tape --sparsity
# Downsampled picture of a tridiagonal matrix: 32 lines of 64 cells, the
# first starting with a mark, every line with at most 4 marks.
if t 0 info r1000.tape --sparsity; then
    lines=$(sed -n '/^hessian:/,$p' "$out" | grep -cE '^  [#.]{64}$')
    widest=$(sed -n '/^hessian:/,$p' "$out" | grep -E '^  [#.]{64}$' | tr -cd '#\n' | awk '{ if (length > m) m = length } END { print m }')
    if [[ $lines -eq 32 && $widest -le 4 ]]; then
        ok "info --sparsity: downsampled Hessian picture is a 32 x 64 band"
    else
        fail "info --sparsity: downsampled picture has $lines lines, widest $widest marks"
    fi
fi
expect 0 out '^sparsity wrt: +block 1 "theta" \(1\)$' info p.tape --sparsity --wrt theta
expect 0 out '^jacobian: +2 x 1, nnz 2 ' info p.tape --sparsity --wrt 1
expect 0 out '^svg: +r10\.svg$' info r10.tape --svg r10.svg
if grep -q '<svg' r10.svg && grep -q 'Hessian of w.y: 10 x 10, nnz 19, colours 3' r10.svg &&
    [[ $(grep -c '<rect x=.*width="40\.00" height="40\.00"/>' r10.svg) -eq $((10 + 28)) ]]; then
    ok "info --svg: both panels, one square per nonzero (10 + 28 mirrored)"
else
    fail "info --svg: r10.svg does not hold the expected panels"
fi
if command -v xmllint >/dev/null 2>&1; then
    if xmllint --noout r10.svg 2>"$err"; then ok "info --svg: well-formed XML"; else fail "info --svg: xmllint"; fi
fi
expect 1 err "cannot write $work/nodir/x\.svg" info r10.tape --svg "$work/nodir/x.svg"
[[ ! -e $work/nodir/x.svg.tmp ]] && ok "info --svg: no temporary file left behind"
expect 2 err '--wrt applies to --sparsity and --svg' info p.tape --wrt 0
expect 2 err "--wrt: tape \"polar\" has no input block 'phi'" info p.tape --sparsity --wrt phi
expect 0 out '--sparsity' info --help

# ------------------------------------------------------------ optimize
expect 0 out 'rho\.tape: tape "rosenbrock_hess", [0-9]+ -> [0-9]+ instructions' optimize rh.tape -o rho.tape
expect 0 out '^hess = 1330 480 480 200$' eval rho.tape --x -1.2,1
for level in none basic medium high max 0 4; do
    expect 0 out "ro_$level\\.tape" optimize rh.tape --level "$level" -o "ro_$level.tape"
done
t 0 optimize rho.tape -o rhoo.tape && same rho.tape rhoo.tape "optimising twice changes nothing"
expect 2 err "--level: unknown level '9'" optimize rh.tape --level 9 -o x.tape

# ------------------------------------------------------------ rust
expect 0 out 'crate: crate with 3 kernels \(f64, std\)' rust r.tape rg.tape rh.tape -o crate
if grep -q 'pub fn rosenbrock_rosenbrock(' crate/src/lib.rs \
   && grep -q 'pub fn rosenbrock_rosenbrock_grad(' crate/src/lib.rs \
   && grep -q 'pub fn rosenbrock_rosenbrock_hess(' crate/src/lib.rs \
   && [[ -f crate/Cargo.toml && -f crate/tests/kernels.rs ]]; then
    ok "rust: lib.rs holds the three kernels"
else
    fail "rust: lib.rs lacks a kernel"
fi
expect 0 out 'k32: crate with 2 kernels \(f32, no_std\)' \
    rust p.tape pt.tape --f32 --no-std --crate-name geo -o k32
if grep -q 'pub fn geo_polar(' k32/src/lib.rs && grep -q 'pub fn geo_polar_jac(' k32/src/lib.rs \
   && grep -q '#!\[no_std\]' k32/src/lib.rs && grep -q 'name = "geo"' k32/Cargo.toml; then
    ok "rust --f32 --no-std --crate-name: kernels geo_polar, geo_polar_jac"
else
    fail "rust --f32 --no-std --crate-name"
fi
expect 1 err 'two kernels are named `rosenbrock_rosenbrock`' rust r.tape r.tape -o dup
expect 2 err "--crate-name: '1x' is not a Rust identifier" rust r.tape --crate-name 1x -o x
expect 1 err 'crate name "fn" is not a valid Rust identifier' rust r.tape --crate-name fn -o x
expect 2 err "option '-o/--output' is required" rust r.tape
expect 2 err 'missing argument' rust -o x

# ------------------------------------------------------------ c
expect 0 out 'r\.tape: cgen/rosenbrock\.c and \.h \(double\)' c r.tape -o cgen
expect 0 out 'rg\.tape: cgen/rgrad\.c and \.h \(double, with the batch variant\)' \
    c rg.tape --batch --name rgrad -o cgen
if [[ -f cgen/rosenbrock.c && -f cgen/rosenbrock.h && -f cgen/rgrad.c ]] \
   && grep -q 'int rgrad_batch(size_t npts, const double \*X' cgen/rgrad.h \
   && grep -q 'ffp-contract=off' cgen/rgrad.c; then
    ok "c: files and prototypes"
else
    fail "c: files or prototypes missing"
fi
if command -v cc >/dev/null 2>&1; then
    if cc -std=c11 -Wall -Wextra -pedantic -Werror -ffp-contract=off -c cgen/rgrad.c -o cgen/rgrad.o; then
        ok "c: the generated file compiles cleanly"
    else
        fail "c: the generated file does not compile"
    fi
fi
expect 1 err 'hold tapes of the same name "rosenbrock"' c r.tape r.tape -o cgen
expect 2 err '--name needs exactly one tape file' c r.tape rg.tape --name x -o cgen
expect 1 err '"int" is not a C function name' c r.tape --name int -o cgen
expect 2 err "--part-size: '0' is not an integer" c r.tape --part-size 0 -o cgen
expect 2 err "option '-o/--output' is required" c r.tape

# ------------------------------------------------------------ bad files
head -c 100 r.tape >trunc.tape
cp r.tape flip.tape
printf '\xff' | dd of=flip.tape bs=1 seek=60 conv=notrunc status=none
echo 'not a tape' >text.tape
: >empty.tape
for cmd in info dump dot "eval --x 1,2" "check --x 1,2" "derive --grad -o x.tape" \
           "optimize -o x.tape" "rust -o xcrate"; do
    set -- $cmd
    sub=$1
    shift
    expect 1 err "^tapegen $sub: cannot open missing\\.tape: No such file or directory\$" \
        "$sub" missing.tape "$@"
    expect 1 err "^tapegen $sub: trunc\\.tape: at byte [0-9]+: .*truncated" "$sub" trunc.tape "$@"
    expect 1 err "^tapegen $sub: flip\\.tape: at byte [0-9]+: .*corrupted" "$sub" flip.tape "$@"
    expect 1 err "^tapegen $sub: text\\.tape: at byte 0: not a tapegen tape file" "$sub" text.tape "$@"
    expect 1 err "^tapegen $sub: empty\\.tape: at byte 0: " "$sub" empty.tape "$@"
done
expect 1 err "^tapegen rust: flip\\.tape: at byte" rust r.tape flip.tape -o xcrate
[[ ! -e xcrate ]] && ok "rust writes nothing when a tape file is bad" || fail "rust wrote a crate from a bad file"

# ------------------------------------------------------------ robustness
# Foreign inputs are refused at their header: quickly, with little memory.
mkdir adir
expect 1 err "^tapegen info: cannot read adir: is a directory\$" info adir
expect 1 err "^tapegen info: /dev/zero: at byte 0: not a tapegen tape file" info /dev/zero
expect 1 err "^tapegen info: /dev/urandom: at byte 0: not a tapegen tape file" info /dev/urandom
# A tape file through a pipe is read up to the size its header declares.
if "$exe" info <(cat r.tape) >"$out" 2>"$err" && grep -q '^tape: *rosenbrock$' "$out"; then
    ok "tapegen info <(cat r.tape)"
else
    fail "tapegen info <(cat r.tape)"
fi

# The issue's reproducer: a save that fails under a file size limit leaves
# the old file as it was, and no temporary file behind.
"$exe" example polar -o keep.tape >/dev/null
cp keep.tape keep.orig
mkdir -p fsz && cp keep.tape fsz/keep.tape
rc=0
(ulimit -f 8; trap '' XFSZ; exec "$exe" example rosenbrock --n 400 -o fsz/keep.tape) \
    >"$out" 2>"$err" || rc=$?
if [[ $rc -eq 1 ]] && grep -q 'fsz/keep.tape: file size limit exceeded' "$err" \
   && cmp -s fsz/keep.tape keep.orig && [[ $(ls -A fsz) == keep.tape ]]; then
    ok "a save over the file size limit exits 1 and keeps the old file"
else
    fail "a save over the file size limit (exit $rc, directory: $(ls -A fsz | tr '\n' ' '))"
fi
# Without the trap: the tool itself ignores SIGXFSZ, so it is not killed
# half-way (which would leave its temporary file).
rc=0
(ulimit -f 8; exec "$exe" example rosenbrock --n 400 -o fsz/keep.tape) >"$out" 2>"$err" || rc=$?
if [[ $rc -eq 1 ]] && grep -q 'file size limit exceeded' "$err" && cmp -s fsz/keep.tape keep.orig \
   && [[ $(ls -A fsz) == keep.tape ]]; then
    ok "tapegen under ulimit -f without a trap exits 1 and keeps the old file"
else
    fail "tapegen under ulimit -f without a trap (exit $rc, directory: $(ls -A fsz | tr '\n' ' '))"
fi
# The same for a crate: the old lib.rs stays.
"$exe" rust p.tape -o fcrate >/dev/null
cp fcrate/src/lib.rs lib.orig
"$exe" example rosenbrock --n 400 -o big400.tape >/dev/null
rc=0
(ulimit -f 8; trap '' XFSZ; exec "$exe" rust big400.tape --crate-name polar -o fcrate) \
    >"$out" 2>"$err" || rc=$?
if [[ $rc -eq 1 ]] && grep -q 'file size limit exceeded' "$err" && cmp -s fcrate/src/lib.rs lib.orig \
   && [[ $(ls -A fcrate/src) == lib.rs && $(ls -A fcrate | tr '\n' ' ') == "Cargo.toml README.md src tests " ]]; then
    ok "a crate over the file size limit exits 1 and keeps the old crate"
else
    fail "a crate over the file size limit (exit $rc; $(ls -A fcrate fcrate/src | tr '\n' ' '))"
fi

# Out of memory is called so (address space limited; not under ASan, which
# needs its shadow memory).
libs=$(ldd "$exe" 2>/dev/null || true)   # not a pipe into grep -q: pipefail + SIGPIPE
if [[ $libs != *libasan* && $libs != *libtsan* ]]; then
    "$exe" example rosenbrock --n 2000 -o r2k.tape >/dev/null
    "$exe" derive r2k.tape --hess -o r2kh.tape >/dev/null
    # Tighter and tighter address-space limits: somewhere the load runs out
    # of memory; every run either succeeds or says so, never crashes.
    said=0 bad=""
    for v in 60000 50000 40000 30000 25000 20000 15000; do
        rc=0
        (ulimit -v $v; exec "$exe" info r2kh.tape) >"$out" 2>"$err" || rc=$?
        if [[ $rc -eq 1 ]] && grep -q '^tapegen info: .*out of memory' "$err"; then
            said=1
        elif [[ $rc -ne 0 ]] && grep -q '^tapegen info:' "$err"; then
            bad="$bad v=$v:$rc:$(head -1 "$err")"
        fi
    done
    if [[ $said -eq 1 && -z $bad ]]; then
        ok "tapegen info out of memory says so"
    else
        fail "tapegen info under ulimit -v:${bad:- never out of memory}"
    fi
fi

# ------------------------------------------------------------ usage and help
for cmd in info dump dot eval check derive optimize rust example; do
    expect 0 out "^usage: tapegen $cmd" "$cmd" --help
    expect 0 out "^usage: tapegen $cmd" help "$cmd"
    expect 2 err "^tapegen $cmd: unknown option '--bogus'" "$cmd" r.tape --bogus
    expect 2 err "^usage: tapegen $cmd" "$cmd" r.tape --bogus
    expect 2 err "^tapegen $cmd: missing argument" "$cmd"
done
expect 0 out '^  rust +write a Rust crate' --help
for cmd in info dump dot eval check derive optimize rust example help version; do
    expect 0 out "^  $cmd " --help
done
expect 2 err "unknown command 'frob'" help frob
expect 2 err "^tapegen info: unexpected argument 'p\\.tape'" info r.tape p.tape
expect 2 err "unexpected argument '--x'" eval r.tape -- --x 0,0

# Loops kept in the tape (issue 11): the format 3 golden file.
if [[ -n ${TG_SOURCE_DIR:-} && -f $TG_SOURCE_DIR/tests/data/golden/loops.tape ]]; then
    cp "$TG_SOURCE_DIR/tests/data/golden/loops.tape" lp.tape
    expect 0 out '^  %11 scan body0: 10 operands, 6 outputs$' info lp.tape
    expect 0 out '^  %18 map body1: 9 operands, 4 outputs$' info lp.tape
    expect 0 out '^    body0: "g", 14 instructions, blocks x\[2\] p\[1\] -> y\[1\]$' info lp.tape
    expect 0 out '^%18 = map body1 count=4 xs=\[%2 %3 %4 %5 %6 %7 %8 %9\] params=\[%10\]$' dump lp.tape
    expect 0 out '^%19 = xout %18 0$' dump lp.tape
    expect 0 out '^  body0:$' dump lp.tape
    expect 0 out '^    tape "g": 3 inputs, 1 outputs' dump lp.tape
    expect 0 out 'label="scan body0 \(\\"s\\"\)", shape=box3d' dot lp.tape
    expect 0 out '^  n11 -> n12;$' dot lp.tape
else
    echo "skipped: loops.tape (TG_SOURCE_DIR unset)"
fi

# A successful command whose output cannot be written fails with 1.
if [[ -w /dev/full ]]; then
    rc=0
    "$exe" dump r5h.tape >/dev/full 2>"$err" || rc=$?
    if [[ $rc -eq 1 ]] && grep -q 'cannot write to standard output' "$err"; then
        ok "tapegen dump >/dev/full -> 1"
    else
        fail "tapegen dump >/dev/full exited $rc"
    fi
fi

echo
echo "test_cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
