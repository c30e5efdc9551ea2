#!/bin/bash
# cross/build.sh [TARGET…] - reproducible, stripped, static release binaries with plain
# cargo + rust-lld (no C toolchain, no Docker). Default targets: x86_64-unknown-linux-musl,
# aarch64-unknown-linux-musl, armv7-unknown-linux-musleabihf. A target whose Rust std is
# not installed (`rustup target add T` failed or was not run) is skipped with a message
# saying so (exit 0); PATHMAN_BUILD_STRICT=1 makes that an error.
#
# Reproducible: SOURCE_DATE_EPOCH (default: the last commit's time, or 0 outside git) and
# --remap-path-prefix for the source dir (→ /build/pathman), the target dir, CARGO_HOME
# (→ /cargo), the registry's and vendor/'s crate dirs (→ /deps; the release tarball's
# vendor/ has versioned dir names so both give the same paths) and the rustup toolchain
# (→ /rustc-sysroot). Two builds from different directories → the same bytes.
#
# Extra cargo options come from PATHMAN_CARGO_FLAGS (e.g. "--offline --locked"), extra
# rustflags from PATHMAN_RUSTFLAGS.
#
# PATHMAN_SMALL=1: the smallest binary, for flash-starved boards (into TARGET_DIR/small/):
# std is rebuilt with the program (cargo -Zbuild-std, optimize_for_size, no backtrace
# symbolizer), panic locations are left out (-Zlocation-detail=none: a crash still prints its
# reason, at "<redacted>"). These are unstable options: the stable
# toolchain allows them with RUSTC_BOOTSTRAP=1, which this sets; it needs the rust-src
# component (`rustup component add rust-src`). aarch64: ~1.33 MB instead of ~1.58 MB.
# Prints, per target: TARGET PATH SIZE SHA256.
set -euo pipefail

SRC=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$SRC"
command -v cargo >/dev/null || { echo "build.sh: cargo is needed but not installed" >&2; exit 1; }
[ $# -gt 0 ] || set -- x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$SRC" log -1 --format=%ct HEAD 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
CH=${CARGO_HOME:-$HOME/.cargo}
TD=${CARGO_TARGET_DIR:-$SRC/target}
if [ "${PATHMAN_SMALL:-0}" = 1 ]; then
    if [ ! -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library/std" ]; then
        echo "build.sh: PATHMAN_SMALL=1 rebuilds std and needs its source: rustup component add rust-src" >&2
        exit 1
    fi
    TD=$TD/small
    export CARGO_TARGET_DIR=$TD RUSTC_BOOTSTRAP=1
    PATHMAN_CARGO_FLAGS="-Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size ${PATHMAN_CARGO_FLAGS:-}"
    PATHMAN_RUSTFLAGS="-Zlocation-detail=none ${PATHMAN_RUSTFLAGS:-}"
fi
mkdir -p "$TD"
TD=$(cd "$TD" && pwd)
SYSROOT=$(rustc --print sysroot)
# rustc uses the last matching prefix, so the more specific ones come last.
REMAP=(
    "--remap-path-prefix=$SYSROOT=/rustc-sysroot"
    "--remap-path-prefix=$CH=/cargo"
    "--remap-path-prefix=$SRC=/build/pathman"
    "--remap-path-prefix=$TD=/build/target"
    "--remap-path-prefix=$SRC/vendor=/deps"
)
# With the rust-src component installed, rustc names std's files by their local copy
# ($SYSROOT/lib/rustlib/src/rust/...) instead of /rustc/<commit>/...: crates built before and
# after `rustup component add rust-src` would differ. Both get the name std was built with.
HASH=$(rustc -vV | sed -n 's/^commit-hash: //p')
[ -z "$HASH" ] || REMAP+=("--remap-path-prefix=$SYSROOT/lib/rustlib/src/rust=/rustc/$HASH")
for d in "$CH"/registry/src/*/; do
    [ -d "$d" ] && REMAP+=("--remap-path-prefix=${d%/}=/deps")
done
read -r -a EXTRA <<<"${PATHMAN_CARGO_FLAGS:-}"
# shellcheck source=cross/flags.sh
. "$SRC/cross/flags.sh"

SKIPPED=()
for T in "$@"; do
    libdir=$(rustc --print target-libdir --target "$T" 2>/dev/null || true)
    if [ -z "$libdir" ] || ! ls "$libdir"/libstd-*.rlib >/dev/null 2>&1; then
        msg="$T skipped: its Rust std is not installed (\`rustup target add $T\`; where the toolchain server has no std for it, e.g. 404, build $T where it installs, or with cross)"
        echo "build.sh: $msg" >&2
        SKIPPED+=("$T")
        continue
    fi
    # RUSTFLAGS replaces .cargo/config.toml's target rustflags: cross/flags.sh repeats them.
    RUSTFLAGS="$(pm_target_rustflags "$T") -C link-arg=--no-eh-frame-hdr -C link-arg=-T$SRC/cross/no-unwind-tables.ld ${REMAP[*]} ${PATHMAN_RUSTFLAGS:-}" \
        cargo build --release --target "$T" "${EXTRA[@]+"${EXTRA[@]}"}" >&2
    bin=$TD/$T/release/pathman
    echo "$T $bin $(stat -c %s "$bin") $(sha256sum "$bin" | cut -d' ' -f1)"
done
if [ ${#SKIPPED[@]} -gt 0 ] && [ "${PATHMAN_BUILD_STRICT:-0}" = 1 ]; then
    echo "build.sh: skipped ${SKIPPED[*]} (PATHMAN_BUILD_STRICT=1)" >&2
    exit 1
fi
