#!/bin/bash
# cross/release.sh [OUTDIR] - the offline release tarball pathman-<version>.tar.gz:
# the tracked files of HEAD (`git archive`), the crates of Cargo.lock in vendor/
# (`cargo vendor --locked --versioned-dirs`, so the directory names match the registry's
# and cross/build.sh gives the same bytes from either), and .cargo/config.toml = the
# repository's target settings + crates-io replaced by vendor/. A firmware build then runs
# `cargo build --offline --locked --release` with no network and an empty CARGO_HOME.
#
# Byte-reproducible: names sorted, every mtime = SOURCE_DATE_EPOCH (default: the last
# commit's time), owner/group 0 numeric, modes normalised, `gzip -n`. Built twice → same
# sha256. OUTDIR defaults to target/release-tarball. Prints the path and the sha256.
# Needs git, cargo, GNU tar, gzip. `cargo vendor` reads the registry cache or the network.
set -euo pipefail

REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
OUT=${1:-$REPO/target/release-tarball}
cd "$REPO"
for t in git cargo tar gzip sha256sum; do
    command -v "$t" >/dev/null || { echo "release.sh: $t is needed but not installed" >&2; exit 1; }
done
VERSION=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | sed -n 1p)
[ -n "$VERSION" ] || { echo "release.sh: no version in Cargo.toml" >&2; exit 1; }
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
export SOURCE_DATE_EPOCH
NAME=pathman-$VERSION

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/$NAME"
git archive --format=tar HEAD | tar -x -C "$STAGE/$NAME"
(cd "$STAGE/$NAME" && cargo vendor --locked --versioned-dirs --quiet vendor >/dev/null)

# .cargo/config.toml: the repository's (from HEAD) plus the vendored source.
mkdir -p "$STAGE/$NAME/.cargo"
{
    if [ -f "$STAGE/$NAME/.cargo/config.toml" ]; then cat "$STAGE/$NAME/.cargo/config.toml"; echo; fi
    cat <<'CFG'
# Added by cross/release.sh: every crate comes from vendor/ (offline, --locked builds).
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "vendor"
CFG
} >"$STAGE/config.toml"
mv "$STAGE/config.toml" "$STAGE/$NAME/.cargo/config.toml"

mkdir -p "$OUT"
TARBALL=$OUT/$NAME.tar.gz
tar -C "$STAGE" --sort=name --format=gnu --mtime="@$SOURCE_DATE_EPOCH" \
    --owner=0 --group=0 --numeric-owner --mode='u+rwX,go+rX,go-w' \
    -cf - "$NAME" | gzip -n -9 >"$TARBALL.tmp"
mv "$TARBALL.tmp" "$TARBALL"
echo "$TARBALL"
sha256sum "$TARBALL" | cut -d' ' -f1
