#!/bin/bash
# cross/test.sh [TARGET [CARGO TEST ARGS…]] - the unit tests (the library's and the binary's)
# built for a static musl target with the release binary's code generation (cross/flags.sh:
# opt-level z, LTO, the machine outliner) and run natively, or under qemu-user when the
# target's CPU is not this machine's. Default TARGET: aarch64-unknown-linux-musl. The
# emulator is qemu-ARCH-static (Debian qemu-user-static) or qemu-ARCH. Output is cargo
# test's ("Running …", "test result: …"), so tests/run.sh counts it like its own.
#
# Under qemu-user one test is skipped, because the emulator lacks what it needs: qemu-user
# passes NETLINK_ROUTE through (the rtnetlink tests run) but refuses to open NETLINK_NETFILTER
# sockets (EPROTONOSUPPORT), and edge::nft's kernel test sends nftables batches. It runs
# natively, in the x86_64 run and in the namespace lab's.
set -euo pipefail

SRC=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$SRC"
T=${1:-aarch64-unknown-linux-musl}
[ $# -eq 0 ] || shift
arch=${T%%-*}
SKIP=()
runner_var=CARGO_TARGET_$(echo "$T" | tr 'a-z-' 'A-Z_')_RUNNER
if [ "$arch" != "$(uname -m)" ]; then
    QEMU=""
    for q in "qemu-$arch-static" "qemu-$arch"; do
        if command -v "$q" >/dev/null; then QEMU=$(command -v "$q"); break; fi
    done
    [ -n "$QEMU" ] || { echo "test.sh: qemu-$arch-static (Debian qemu-user-static) or qemu-$arch is needed to run $T's tests" >&2; exit 1; }
    export "$runner_var=$QEMU"
    SKIP=(--skip edge::nft::tests::kernel_refusal_leaves_previous_ruleset)
fi
# shellcheck source=cross/flags.sh
. "$SRC/cross/flags.sh"
# Test builds unwind (a failing test, proptest), so the unwinder's tables stay in (build.sh
# drops them from the release artefact only). A target dir of its own: other flags than
# build.sh's would rebuild each other's crates.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$SRC/target}/cross-test
RUSTFLAGS="$(pm_target_rustflags "$T")" \
    exec cargo test --release --no-fail-fast --target "$T" --lib --bins "$@" -- --test-threads=2 "${SKIP[@]+"${SKIP[@]}"}"
