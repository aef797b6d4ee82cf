#!/usr/bin/env bash
# abi_exports: the shared library exports the public API and nothing else.
# Every defined dynamic symbol must be a public name (tg_ followed by a
# letter: internal names never start with tg_, and tg__ is not public), and
# a few entry points must be there (so that an empty export list fails).
#
# usage: exports.sh NM LIBRARY
set -euo pipefail
nm_exe=$1
lib=$2

# the linker's own markers, which some binutils versions export
linker_symbols='^(_edata|_end|__bss_start|_init|_fini)$'

syms=$("$nm_exe" -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u)
count=$(printf '%s\n' "$syms" | grep -c . || true)
bad=$(printf '%s\n' "$syms" | grep -Ev "$linker_symbols" | grep -Ev '^tg_[a-z0-9]' || true)
echo "abi_exports: $count defined dynamic symbols in $lib"
status=0
if [[ -n $bad ]]; then
    echo "abi_exports: exported symbols outside the public API:"
    printf '  %s\n' $bad
    status=1
fi
for want in tg_tape_new tg_tape_free tg_eval tg_gradient_ws tg_workspace_new tg_status_str \
            tg_last_error tg_op2; do
    if ! printf '%s\n' "$syms" | grep -qx "$want"; then
        echo "abi_exports: public symbol $want is not exported"
        status=1
    fi
done
exit $status
