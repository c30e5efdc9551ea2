#!/bin/bash
# tests/bench/size.sh - the binary-size figure of issue 12: the stripped static musl release
# binaries for aarch64 and x86_64 beside the 1.6 MB target (1 600 000 bytes), the same built
# with cross/build.sh's PATHMAN_SMALL=1 where rust-src is installed, and, when
# cargo-bloat is installed, the crates that take the most bytes (x86_64, unstripped build).
# No root, no lab. Builds what is missing (or everything with --build).
#
# Usage: size.sh [--build] [--no-bloat] [--top N]
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
BUILD=0
BLOAT=1
TOP=15
while [ $# -gt 0 ]; do
    case "$1" in
        --build) BUILD=1 ;;
        --no-bloat) BLOAT=0 ;;
        --top) TOP=$2; shift ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "size.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
TARGET_BYTES=1600000
pm_find_cargo || { echo "size.sh: no cargo" >&2; exit 1; }
OUT=${CARGO_TARGET_DIR:-$REPO/target}

echo "binary size (issue 12 target: stripped static <= $TARGET_BYTES bytes), $(date -Is), $(rustc --version)"
printf '%-32s %12s %12s  %s\n' target bytes "<= target" binary
for t in aarch64-unknown-linux-musl x86_64-unknown-linux-musl; do
    bin=$OUT/$t/release/pathman
    if [ "$BUILD" = 1 ] || [ ! -x "$bin" ]; then
        log "building $t"
        # The release artefact's recipe (reproducible flags, no unwinder lookup table).
        "$REPO/cross/build.sh" "$t" >&2 || { printf '%-32s %12s %12s  %s\n' "$t" n/a n/a "build failed"; continue; }
    fi
    size=$(stat -c %s "$bin")
    printf '%-32s %12s %12s  %s (sha256 %s…)\n' "$t" "$size" "$(verdict "$size" "<=" "$TARGET_BYTES")" \
        "$bin" "$(sha256sum "$bin" | cut -c1-12)"
done

# The same source built for flash-starved boards (cross/build.sh PATHMAN_SMALL=1: std rebuilt
# for size, no panic locations); needs rust-src.
if [ -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library/std" ]; then
    for t in aarch64-unknown-linux-musl x86_64-unknown-linux-musl; do
        bin=$OUT/small/$t/release/pathman
        if [ "$BUILD" = 1 ] || [ ! -x "$bin" ]; then
            log "building $t with PATHMAN_SMALL=1"
            PATHMAN_SMALL=1 "$REPO/cross/build.sh" "$t" >&2 || { printf '%-32s %12s %12s  %s\n' "$t small" n/a n/a "build failed"; continue; }
        fi
        size=$(stat -c %s "$bin")
        printf '%-32s %12s %12s  %s (sha256 %s…)\n' "$t small" "$size" "$(verdict "$size" "<=" "$TARGET_BYTES")" \
            "$bin" "$(sha256sum "$bin" | cut -c1-12)"
    done
else
    echo "PATHMAN_SMALL=1 rows skipped: no rust-src (rustup component add rust-src)"
fi

# Per-crate accounting: cargo-bloat reads symbols, so it needs an unstripped build (its own
# target directory, so the stripped binaries above stay as they are).
if [ "$BLOAT" = 1 ]; then
    if cargo bloat --version >/dev/null 2>&1; then
        echo
        echo "top $TOP crates by .text, x86_64 musl release, unstripped (cargo bloat --crates):"
        (cd "$REPO" && CARGO_PROFILE_RELEASE_STRIP=false CARGO_TARGET_DIR=$OUT/bloat \
            cargo bloat --release --target x86_64-unknown-linux-musl --crates -n "$TOP" 2>/dev/null) ||
            echo "cargo bloat failed"
    else
        echo
        echo "per-crate list skipped: cargo-bloat not installed (cargo install cargo-bloat)"
    fi
fi
