#!/bin/bash
# tests/run.sh - the project's test command (README): installs what is missing on a fresh
# Debian machine, then runs, from the repository root:
#   cargo fmt --check
#   cargo clippy --all-targets -- -D warnings, and the fuzz targets' crate (fuzz/) the same
#   cargo build --release, and the static musl release binaries for x86_64 and aarch64
#       (cross/build.sh; armv7 too where its std installs, else a note in the summary)
#   cargo test --release --no-fail-fast, one test binary at a time (the library's unit
#       tests, the binary's, and every tests/*.rs; integration tests build network-namespace
#       labs with tests/lab/lab.sh, so they need root; tests/vm_tier.rs boots a QEMU guest
#       with simulated WiFi radios, tests/vm/README.md), -- --test-threads=2
#   cross/test.sh for x86_64 and aarch64 musl: the unit tests again, built as the release
#       binaries are (static musl, their code generation), aarch64's under qemu-user
# and exits non-zero when any step fails. The summary names the tiers that ran (namespace lab,
# VM tier, or why its guest could not boot). The closing line counts every test of every test
# binary: "N passed, N failed"; a binary that does not build, or that crashes or aborts
# before it reports, counts as one failed test and is named in the line above it.
# Needs root: re-executes itself with sudo when not root; finds a rustup cargo that root's
# PATH lacks (~/.cargo/bin of the sudo user, /root/.cargo/bin, $CARGO_HOME/bin). Options:
#   --no-install   do not install missing Debian packages
#   --quick        skip fmt, clippy and the fuzz targets' build
#   -- ARGS        select test binaries (--lib, --bins, --test NAME, --cross TARGET,
#                  repeatable; default: all) and pass the rest to `cargo test`
#                  (e.g. -- --test lab_selftest)
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
LAB=$HERE/lab/lab.sh
# shellcheck source=tests/root-cargo.sh
. "$HERE/root-cargo.sh"
INSTALL=1; QUICK=0; TEST_ARGS=()
ARGS=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --no-install) INSTALL=0 ;;
        --quick)      QUICK=1 ;;
        --)           shift; TEST_ARGS=("$@"); break ;;
        -h|--help)    sed -n '2,24p' "$0"; exit 0 ;;
        *)            echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

say() { printf '\n=== %s\n' "$*"; }

# ------------------------------------------------------------------ root
pm_need_root "$0" "${ARGS[@]+"${ARGS[@]}"}"

# ------------------------------------------------------------------ packages
if [ $INSTALL = 1 ]; then "$HERE/lab/install-deps.sh"; else "$HERE/lab/install-deps.sh" --check; fi

# ------------------------------------------------------------------ Rust toolchain
pm_find_cargo || { echo "run.sh: cargo not found on PATH, in \$CARGO_HOME/bin, ~/.cargo/bin or /root/.cargo/bin (install Rust with rustup)" >&2; exit 1; }
say "cargo: $(command -v cargo) ($(cargo --version 2>&1))"
if [ $QUICK = 0 ] && command -v rustup >/dev/null; then
    cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
    cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi
# std's source, for cross/build.sh PATHMAN_SMALL=1 (tests/release.rs builds it).
if command -v rustup >/dev/null && [ ! -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library/std" ]; then
    rustup component add rust-src >/dev/null 2>&1 || say "rust-src not installable: the PATHMAN_SMALL=1 build test will fail"
fi

# ------------------------------------------------------------------ test binaries
# Which binaries to run: `-- --lib --test X …` selects, anything else goes to cargo test.
SELECT=(); PASS=()
set -- "${TEST_ARGS[@]+"${TEST_ARGS[@]}"}"
while [ $# -gt 0 ]; do
    case "$1" in
        --lib)   SELECT+=("--lib") ;;
        --bins)  SELECT+=("--bins") ;;
        --test)  SELECT+=("--test $2"); shift ;;
        --test=*) SELECT+=("--test ${1#--test=}") ;;
        --cross) SELECT+=("cross:$2"); shift ;;
        *)       PASS+=("$1") ;;
    esac
    shift
done
if [ ${#SELECT[@]} -eq 0 ]; then
    # Every test target cargo builds: the library, the binary, each tests/*.rs and
    # tests/*/main.rs (cargo's auto-discovery; the crate sets no [[test]] of its own).
    SELECT=("--lib" "--bins")
    for f in "$REPO"/tests/*.rs "$REPO"/tests/*/main.rs; do
        [ -e "$f" ] || continue
        case "$f" in */main.rs) n=$(basename "$(dirname "$f")") ;; *) n=$(basename "$f" .rs) ;; esac
        SELECT+=("--test $n")
    done
    SELECT+=("cross:x86_64-unknown-linux-musl" "cross:aarch64-unknown-linux-musl")
fi

# ------------------------------------------------------------------ steps
cd "$REPO"
"$LAB" gc || true            # labs left by an earlier run that was killed
BEFORE=$("$LAB" list)
FAILED=()
step() {   # step NAME CMD...
    say "$1"; shift
    if "$@"; then return 0; fi
    FAILED+=("$*"); return 1
}
if [ $QUICK = 0 ]; then
    step "format" cargo fmt --check || true
    step "clippy" cargo clippy --all-targets -- -D warnings || true
    # The fuzz targets (fuzz/, a crate of their own) drive the parsers' public API: a change
    # of that API must not leave them unbuildable until someone runs a fuzzer.
    step "fuzz targets build" cargo clippy --manifest-path fuzz/Cargo.toml --bins -- -D warnings || true
fi

# ------------------------------------------------------------------ cross targets (issue 12)
# Static musl release builds for x86_64 and aarch64 (a failure fails the run); armv7 where
# its std installs (the toolchain server may answer 404: then it is noted, not failed).
CROSS_NOTE=""
for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf; do
    if command -v rustup >/dev/null && ! rustup target list --installed 2>/dev/null | grep -x "$t" >/dev/null; then
        rustup target add "$t" >/dev/null 2>&1 || true
    fi
    if ls "$(rustc --print target-libdir --target "$t" 2>/dev/null)"/libstd-*.rlib >/dev/null 2>&1; then
        step "build $t" "$REPO/cross/build.sh" "$t" || true   # = cargo build --release --target $t, reproducible flags (tests/release.rs reuses it)
    elif [ "$t" = armv7-unknown-linux-musleabihf ]; then
        CROSS_NOTE="$t not built: its Rust std cannot be installed here (rustup target add failed); it builds where it installs"
        say "$CROSS_NOTE"
    else
        FAILED+=("build $t: its Rust std is not installed (rustup target add $t)")
    fi
done

PASSED=0; FAILN=0; SKIPPED=0; RAN=0; NOBUILD=0; CRASHED=0; BROKEN=(); VM_LOG=""; BUILT=0; CROSS_RAN=()
LOGDIR=$(mktemp -d)
trap 'rm -rf "$LOGDIR"' EXIT
if step "build" cargo build --release; then
    BUILT=1
    say "tests (${#SELECT[@]} test binaries)"
    i=0
    for sel in "${SELECT[@]}"; do
        i=$((i + 1)); log=$LOGDIR/$i.log
        if [ "$sel" = "--test vm_tier" ]; then VM_LOG=$log; fi
        if [[ $sel == cross:* ]]; then
            t=${sel#cross:}
            if [ "${t%%-*}" = "$(uname -m)" ]; then CROSS_RAN+=("$t"); else CROSS_RAN+=("$t (qemu-user)"); fi
            cmd=("$REPO/cross/test.sh" "$t")
        else
            # shellcheck disable=SC2206  # $sel is "--lib" or "--test NAME"
            cmd=(cargo test --release --no-fail-fast $sel "${PASS[@]+"${PASS[@]}"}" -- --test-threads=2)
        fi
        rc=0; "${cmd[@]}" 2>&1 | tee "$log" || rc=$?
        # Per binary (--bins may run several): "Running …", its "test … ok|FAILED" lines, then
        # "test result: …". One that never reports crashed or aborted: what it printed
        # before dying still counts, and the binary itself counts as one failure.
        read -r starts p f ig crashed < <(awk '
            function close_bin() { if (open && !reported) { p += ok; f += bad; crashed++ } }
            /^ +Running / { close_bin(); open = 1; reported = 0; ok = 0; bad = 0; starts++; next }
            /^test .* \.\.\. ok$/ { ok++ }
            /^test .* \.\.\. FAILED$/ { bad++ }
            /^test result: / { p += $4; f += $6; i += $8; reported = 1 }
            END { close_bin(); print starts+0, p+0, f+0, i+0, crashed+0 }' "$log")
        if [ "$starts" = 0 ]; then
            # Nothing ran: the binary did not build (or cargo failed before running it).
            BROKEN+=("${sel#--test } did not build")
            f=$((f + 1)); NOBUILD=$((NOBUILD + 1))
        elif [ "$crashed" -gt 0 ]; then
            why=$(grep -oE 'signal: [0-9]+, SIG[A-Z]+|exit (status|code): [0-9]+' "$log" | tail -1 || true)
            BROKEN+=("${sel#--test } crashed${why:+ ($why)}")
            f=$((f + crashed)); CRASHED=$((CRASHED + crashed))
        fi
        RAN=$((RAN + starts))
        PASSED=$((PASSED + p)); FAILN=$((FAILN + f)); SKIPPED=$((SKIPPED + ig))
        if [ "$rc" != 0 ]; then FAILED+=("tests ${sel}"); fi
    done
else
    BROKEN+=("the release build failed, so no test binary was built")
    FAILN=$((FAILN + ${#SELECT[@]})); NOBUILD=${#SELECT[@]}
fi

# no lab may outlive the run
LEFT=$(comm -13 <(echo "$BEFORE" | sort) <("$LAB" list | sort) | xargs)
if [ -n "$LEFT" ]; then
    FAILED+=("labs left behind: $LEFT")
    "$LAB" gc || true
fi

# Which tiers ran: the namespace lab (every other test binary) and the VM tier (tests/vm_tier.rs:
# a QEMU guest with hwsim radios), with the reason when its guest could not boot.
vm_tier_line() {
    local why
    if [ -z "$VM_LOG" ]; then echo "not run (not selected)"; return; fi
    if grep -q '^test result: ok' "$VM_LOG"; then echo "ran, passed"; return; fi
    why=$(grep -m1 -oE "the VM tier cannot boot a guest[^\"]*|vm\.sh: (TIMEOUT: the guest did not boot|the guest (did not boot|could not|cannot)|qemu-system-x86_64 failed|cannot find the kernel|apt-get download)[^\"]*" "$VM_LOG" || true)
    if [ -n "$why" ]; then echo "failed to boot because: $why"; return; fi
    why=$(grep -m1 -oE "guest run [^:]+: [^\"]*" "$VM_LOG" || true)
    echo "ran, failed${why:+: $why}"
}

say "summary"
if [ "$BUILT" = 1 ]; then
    NLAB=$((${#SELECT[@]} - ${#CROSS_RAN[@]})); if [ -n "$VM_LOG" ]; then NLAB=$((NLAB - 1)); fi
    if [ "$NLAB" -gt 0 ]; then LABT="ran ($NLAB test binaries)"; else LABT="not run (not selected)"; fi
    echo "tiers: namespace lab: $LABT; VM tier: $(vm_tier_line); unit tests as the release builds them (cross/test.sh): ${CROSS_RAN[*]:-not run (not selected)}"
else
    echo "tiers: none ran (the release build failed)"
fi
if [ -n "$CROSS_NOTE" ]; then echo "note: $CROSS_NOTE"; fi
if [ ${#FAILED[@]} -eq 0 ]; then echo "all steps passed"; else printf 'FAILED: %s\n' "${FAILED[@]}"; fi
# Each binary that did not build or crashed is one of the failures below.
echo "test binaries: $((RAN - CRASHED)) ran to the end, $NOBUILD did not build, $CRASHED crashed or aborted${BROKEN[*]:+ ($(printf '%s; ' "${BROKEN[@]}" | sed 's/; $//'))}"
# The plain closing line (counted by CI): every test of every binary.
if [ "$SKIPPED" -gt 0 ]; then
    echo "$PASSED passed, $FAILN failed, $SKIPPED skipped"
else
    echo "$PASSED passed, $FAILN failed"
fi
[ ${#FAILED[@]} -eq 0 ] && [ ${#BROKEN[@]} -eq 0 ]
