#!/usr/bin/env bash
# cli_smoke: the tapegen command-line tool's help, version and exit codes.
# usage: smoke.sh TAPEGEN_EXE VERSION
set -euo pipefail

exe=$1
version=$2
fails=0
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

# expect CODE STREAM REGEX -- ARGS...: run the tool, check exit code and that
# STREAM (out|err) matches REGEX (extended).
expect() {
    local code=$1 stream=$2 regex=$3
    shift 4
    local rc=0
    "$exe" "$@" >"$out" 2>"$err" </dev/null || rc=$?
    local file=$out
    [[ $stream == err ]] && file=$err
    if [[ $rc -ne $code ]]; then
        echo "FAIL: tapegen $* exited $rc, expected $code"
        sed 's/^/  stderr: /' "$err"
        fails=$((fails + 1))
    elif ! grep -Eq -- "$regex" "$file"; then
        echo "FAIL: tapegen $*: std$stream does not match /$regex/"
        sed 's/^/  | /' "$file"
        fails=$((fails + 1))
    else
        echo "ok: tapegen $* -> $rc"
    fi
}

expect 0 out "^tapegen ${version//./\\.}\$" -- --version
expect 0 out "^tapegen ${version//./\\.}\$" -- version
expect 0 out "^usage: tapegen"              -- --help
expect 0 out "--version"                    -- -h
expect 0 out "help"                         -- help
expect 2 err "^usage: tapegen"              --
expect 2 err "unknown command 'frobnicate'" -- frobnicate
expect 2 err "unknown option '--frobnicate'" -- --frobnicate
expect 2 err "unexpected argument 'extra'"  -- --version extra

# A successful command whose output cannot be written fails with 1.
if [[ -w /dev/full ]]; then
    rc=0
    "$exe" --help >/dev/full 2>/dev/null || rc=$?
    if [[ $rc -ne 1 ]]; then
        echo "FAIL: tapegen --help >/dev/full exited $rc, expected 1"
        fails=$((fails + 1))
    else
        echo "ok: tapegen --help >/dev/full -> 1"
    fi
fi

if [[ $fails -ne 0 ]]; then
    echo "cli_smoke: $fails check(s) failed"
    exit 1
fi
echo "cli_smoke: all checks passed"
