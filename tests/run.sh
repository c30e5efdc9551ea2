#!/bin/bash
# tests/run.sh - the project's test command (README): installs what is missing on a fresh
# Debian machine, then runs, from the repository root:
#   cargo fmt --check
#   cargo clippy --all-targets -- -D warnings
#   cargo build --release
#   cargo test --release -- --test-threads=2     (integration tests build network-namespace
#                                                labs with tests/lab/lab.sh; they need root)
# and exits non-zero when any step fails. Needs root (re-executes itself with sudo when
# available). Options:
#   --no-install   do not install missing Debian packages
#   --quick        skip fmt and clippy
#   -- ARGS        passed to `cargo test` before its `--` (e.g. -- --test lab_selftest)
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
LAB=$HERE/lab/lab.sh
INSTALL=1; QUICK=0; TEST_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --no-install) INSTALL=0 ;;
        --quick)      QUICK=1 ;;
        --)           shift; TEST_ARGS=("$@"); break ;;
        -h|--help)    sed -n '2,15p' "$0"; exit 0 ;;
        *)            echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

say() { printf '\n=== %s\n' "$*"; }

# ------------------------------------------------------------------ root
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then
        say "not root: re-running with sudo"
        exec sudo --preserve-env=PATH,CARGO_HOME,RUSTUP_HOME,CARGO_TARGET_DIR "$0" "$@"
    fi
    echo "run.sh: the lab tests need root (network namespaces) and sudo is not available" >&2
    exit 1
fi

# ------------------------------------------------------------------ packages
if [ $INSTALL = 1 ]; then "$HERE/lab/install-deps.sh"; else "$HERE/lab/install-deps.sh" --check; fi

# ------------------------------------------------------------------ Rust toolchain
command -v cargo >/dev/null || { echo "run.sh: cargo not found (install Rust with rustup)" >&2; exit 1; }
if [ $QUICK = 0 ] && command -v rustup >/dev/null; then
    cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
    cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
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
fi
TEST_LOG=$(mktemp)
if step "build" cargo build --release; then
    # --lib --bins --tests: the crate has no doc tests, whose empty run would
    # otherwise be the last result line.
    step "tests" bash -o pipefail -c 'cargo test --release --lib --bins --tests "$@" -- --test-threads=2 2>&1 | tee "$0"' \
        "$TEST_LOG" "${TEST_ARGS[@]}" || true
fi
# One closing line over every test binary: "N passed, N failed".
TOTALS=$(awk '/^test result:/ {p += $4; f += $6} END {printf "%d passed, %d failed", p, f}' "$TEST_LOG")
rm -f "$TEST_LOG"

# no lab may outlive the run
LEFT=$(comm -13 <(echo "$BEFORE" | sort) <("$LAB" list | sort) | xargs)
if [ -n "$LEFT" ]; then
    FAILED+=("labs left behind: $LEFT")
    "$LAB" gc || true
fi

say "summary"
if [ ${#FAILED[@]} -eq 0 ]; then
    echo "all steps passed"
    echo "$TOTALS"
    exit 0
fi
printf 'FAILED: %s\n' "${FAILED[@]}"
echo "$TOTALS"
exit 1
