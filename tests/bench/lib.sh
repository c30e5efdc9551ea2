# tests/bench/lib.sh - sourced by the benchmarks: root, the binary measured, verdicts, and
# labs that are removed on every exit (also Ctrl-C / TERM).
#
#   bench_init NAME "$0" "$@"  root (re-exec with sudo), PATHMAN chosen (the static musl
#                              build when it exists, else the host build, built if missing;
#                              PATHMAN=path wins), cleanup trap
#   bench_lab ID               remember a lab to remove on exit (bench_cleanup_hook for more)
#   bench_header TITLE         prints the title line and the binary line
#   row FIGURE PATHMAN CONNMAN TARGET VERDICT   one line of the result table (fixed columns)
#   verdict VALUE OP LIMIT     met / NOT met / n/a; OP is <= or >= or ==
#   ratio A B                  A/B with 2 decimals, or - when either is not a number
#   median                     median of the numbers on stdin (n/a when none)

BENCH_DIR=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd "$BENCH_DIR/../.." && pwd)
LAB=$REPO/tests/lab/lab.sh
# shellcheck source=tests/root-cargo.sh
. "$REPO/tests/root-cargo.sh"

BENCH_LABS=()
BENCH_PIDS=()
bench_cleanup_hook() { :; }
bench_cleanup() {
    set +e
    bench_cleanup_hook
    local p id
    for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    for id in "${BENCH_LABS[@]}"; do "$LAB" down "$id" >/dev/null 2>&1; done
}
bench_lab() { BENCH_LABS+=("$1"); }

bench_init() {
    local name=$1; shift
    BENCH_NAME=$name
    pm_need_root "$@"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    local musl=$REPO/target/x86_64-unknown-linux-musl/release/pathman
    if [ -z "${PATHMAN:-}" ] && [ -x "$musl" ]; then PATHMAN=$musl; fi
    PATHMAN=${PATHMAN:-$REPO/target/release/pathman}
    if [ ! -x "$PATHMAN" ]; then
        pm_find_cargo || { echo "$name: no binary at $PATHMAN and no cargo to build it" >&2; exit 1; }
        (cd "$REPO" && cargo build --release) >&2
    fi
    PATHMAN=$(readlink -f "$PATHMAN")
    export PATHMAN
}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now_ns() { date +%s%N; }

bench_header() {
    local kind sum size
    # `file` is not on every fresh machine: an ELF interpreter request means dynamic.
    if command -v file >/dev/null; then kind=$(file -b "$PATHMAN")
    elif grep -aq '/ld-linux\|/ld-musl' "$PATHMAN"; then kind="dynamically linked"
    else kind="statically linked"; fi
    case "$kind" in
        *"statically linked"*|*"static-pie linked"*) kind="static" ;;
        *"dynamically linked"*) kind="dynamic" ;;
        *) kind="unknown linkage ($kind)" ;;
    esac
    sum=$(sha256sum "$PATHMAN" | cut -c1-12)
    size=$(stat -c %s "$PATHMAN")
    echo "$1, $(date -Is), $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "binary: $PATHMAN ($kind, sha256 $sum…, $size bytes, $("$PATHMAN" --version 2>/dev/null || echo '?'))"
    if command -v connmand >/dev/null; then
        echo "ConnMan: $(command -v connmand) $(connmand -v 2>/dev/null || echo '?') (Debian package)"
    else
        echo "ConnMan: not installed (its columns are n/a)"
    fi
}

median() {
    sort -n | awk '/^[0-9.]+$/ {v[n++]=$1} END {
        if (n == 0) { print "n/a"; exit }
        if (n % 2) printf "%.1f\n", v[(n-1)/2]; else printf "%.1f\n", (v[n/2-1]+v[n/2])/2 }'
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a/b; else print "-" }'
}

verdict() {   # VALUE OP LIMIT
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (v !~ /^-?[0-9.]+$/ || l !~ /^-?[0-9.]+$/) { print "n/a"; exit }
        ok = (op == "<=" && v + 0 <= l + 0) || (op == ">=" && v + 0 >= l + 0) || (op == "==" && v + 0 == l + 0)
        print (ok ? "met" : "NOT met") }'
}

ROW_FMT='%-50s %14s %14s %7s  %-26s %s\n'
row_head() { printf "$ROW_FMT" figure pathman "ConnMan 1.41" ratio target verdict; }
row() {   # FIGURE PATHMAN CONNMAN TARGET VERDICT [RATIO]
    local r=${6:-$(ratio "$2" "$3")}
    printf "$ROW_FMT" "$1" "$2" "$3" "$r" "$4" "$5"
}
