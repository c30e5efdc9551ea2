#!/bin/bash
# fuzz/run.sh - builds pathman's fuzz targets and runs each for a given time, then prints
# one line per target: executions, executions/s, coverage, corpus size and crashes.
#
# Usage: fuzz/run.sh TARGET|all SECONDS [--sanitizer address|none] [--no-build] [-- LIBFUZZER_ARGS]
#   TARGET    one of the targets in fuzz/Cargo.toml (`fuzz/run.sh list` prints them), or all
#   SECONDS   wall time per target. A crash does not end a target's time: its input is saved
#             under fuzz/artifacts/TARGET/ and libFuzzer starts again on the same corpus
#             until the time is used up, so "crashes" counts every one found.
#   --sanitizer  address (default, what cargo fuzz uses) or none (faster; safe Rust panics
#             are found either way, ASan adds out-of-bounds/use-after-free in unsafe code)
# The corpus grows in fuzz/corpus/TARGET/ (not committed); fuzz/seeds/TARGET/ holds the
# committed seeds (real packets, files and bus messages; see fuzz/README.md), read too.
# Needs cargo-fuzz (installed from crates.io when missing). No nightly toolchain is needed:
# the build runs on stable with RUSTC_BOOTSTRAP=1 (cargo fuzz needs -Zsanitizer flags).
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
cd "$HERE"
usage() { sed -n '2,16p' "$0"; exit "${1:-2}"; }

# cargo: root's PATH under sudo often lacks a rustup install.
if ! command -v cargo >/dev/null; then
    for d in "${CARGO_HOME:+$CARGO_HOME/bin}" "${SUDO_USER:+$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo/bin}" \
        "$HOME/.cargo/bin" /root/.cargo/bin; do
        if [ -n "$d" ] && [ -x "$d/cargo" ]; then PATH=$d:$PATH; break; fi
    done
fi
command -v cargo >/dev/null || { echo "fuzz/run.sh: cargo not found (install Rust with rustup)" >&2; exit 1; }

TARGETS=$(sed -n 's/^name = "\([a-z0-9_]*\)"$/\1/p' Cargo.toml | grep -vx pathman-fuzz)
[ "${1:-}" = list ] && { echo "$TARGETS"; exit 0; }
[ $# -ge 2 ] || usage
WHICH=$1; SECS=$2; shift 2
[[ $SECS =~ ^[0-9]+$ ]] && [ "$SECS" -gt 0 ] || { echo "fuzz/run.sh: SECONDS must be a positive number" >&2; exit 2; }
SAN=address; BUILD=1; EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --sanitizer) SAN=$2; shift ;;
        --no-build)  BUILD=0 ;;
        --)          shift; EXTRA=("$@"); break ;;
        -h|--help)   usage 0 ;;
        *)           echo "fuzz/run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$WHICH" = all ]; then RUN=$TARGETS; else
    grep -qx "$WHICH" <<<"$TARGETS" || { echo "fuzz/run.sh: no target '$WHICH' (have: $(echo $TARGETS))" >&2; exit 2; }
    RUN=$WHICH
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz from crates.io" >&2
    cargo install cargo-fuzz --locked
fi
# stable rustc accepts the -Z flags cargo fuzz passes only with RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
if [ $BUILD = 1 ]; then
    # cargo fuzz build takes one target or none (= all).
    if [ "$WHICH" = all ]; then
        cargo fuzz build --sanitizer "$SAN" >&2
    else
        cargo fuzz build --sanitizer "$SAN" "$WHICH" >&2
    fi
fi
BIN=$HERE/target/$TRIPLE/release

crash_files() {   # TARGET -> number of inputs libFuzzer saved as findings
    find "artifacts/$1" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) ! -name '*.log' | wc -l
}
results=()
for t in $RUN; do
    mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
    log=$(mktemp)
    before=$(crash_files "$t")
    start=$(date +%s); execs=0; runs=0; cov=-; status=ok; sigs=()
    while :; do
        left=$(( SECS - ($(date +%s) - start) ))
        [ $left -gt 0 ] || break
        runs=$((runs + 1))
        rc=0
        # -timeout: one input taking 10 s is a finding (e.g. a quadratic parser);
        # -rss_limit_mb: so is one that takes 2 GB.
        "$BIN/$t" -max_total_time="$left" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="artifacts/$t/" "${EXTRA[@]}" "corpus/$t" "seeds/$t" >"$log" 2>&1 || rc=$?
        n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        # After a crash libFuzzer may not print its final stats: take the last status line.
        [ -n "$n" ] || n=$(grep -aoE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
        execs=$(( execs + ${n:-0} ))
        c=$(grep -aoE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
        [ -n "$c" ] && cov=$c
        cp "$log" "artifacts/$t/last-run.log"
        if [ $rc != 0 ]; then
            if ! grep -aqE 'Test unit written to|ERROR: libFuzzer' "$log"; then
                status="failed to run (rc $rc, see fuzz/artifacts/$t/last-run.log)"; break
            fi
            grep -aE 'panicked at|SUMMARY|Test unit written' "$log" | sed "s/^/  $t: /" >&2 || true
            cp "$log" "artifacts/$t/crash-run-$runs.log"
            # Where it failed: the same panic found again is the same finding.
            sigs+=("$(grep -aoE -m1 'panicked at [^ ]+|ERROR: AddressSanitizer: [a-z-]+|ERROR: libFuzzer: [a-z-]+' "$log" || echo unknown)")
        fi
    done
    rm -f "$log"
    new=$(( $(crash_files "$t") - before ))
    distinct=0; [ ${#sigs[@]} -eq 0 ] || distinct=$(printf '%s\n' "${sigs[@]}" | sort -u | wc -l)
    [ ${#sigs[@]} -eq 0 ] || status="$status; found: $(printf '%s\n' "${sigs[@]}" | sort | uniq -c | awk '{c=$1; $1=""; printf "%s%s x%d", (n++ ? ", " : ""), substr($0, 2), c}')"
    secs=$(( $(date +%s) - start ))
    corpus=$(find "corpus/$t" -type f | wc -l)
    results+=("$(printf '%-14s %6s %12s %9s %6s %7s %8s  %s' "$t" "$secs" "$execs" \
        "$(( execs / (secs > 0 ? secs : 1) ))" "$cov" "$corpus" "$new/$distinct" "$status")")
done

echo "fuzz run $(date -Is), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), sanitizer $SAN, $(rustc -V)"
printf '%-14s %6s %12s %9s %6s %7s %8s  %s\n' target secs executions exec/s cov corpus crashes status
echo "(crashes = inputs saved / distinct places they failed)"
printf '%s\n' "${results[@]}"
echo "crash inputs (if any): fuzz/artifacts/TARGET/; reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET FILE"
