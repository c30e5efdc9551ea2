# tests/root-cargo.sh - sourced by the README's commands (tests/demo.sh, tests/run.sh) and
# the benchmarks: they need root (network namespaces) and cargo, on a fresh Debian root
# shell (no sudo installed, cargo in /root/.cargo/bin but maybe not on PATH) as well as for
# a sudo user (whose rustup cargo is in ~/.cargo/bin, which sudo's secure_path drops).
#
#   pm_need_root "$0" "$@"   re-executes the script with sudo when not root, keeping PATH,
#                            CARGO_HOME, RUSTUP_HOME and CARGO_TARGET_DIR (and the cargo it
#                            found, so root builds with the user's toolchain); fails with a
#                            clear message when there is no sudo
#   pm_find_cargo            puts cargo on PATH when it is not: $PM_CARGO (found before sudo),
#                            $CARGO_HOME/bin, the invoking SUDO_USER's ~/.cargo/bin,
#                            $HOME/.cargo/bin, /root/.cargo/bin; returns 1 if none has it

# Where the invoking user keeps rustup's files, when sudo brought us here.
pm__sudo_home() {
    [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && getent passwd "$SUDO_USER" | cut -d: -f6
}

pm_need_root() {
    local script=$1; shift
    if [ "$(id -u)" = 0 ]; then
        # A user's PATH kept through sudo lacks the sbin directories (ip, sysctl, nft…).
        local d
        for d in /usr/local/sbin /usr/sbin /sbin; do
            case ":$PATH:" in *":$d:"*) ;; *) PATH=$PATH:$d ;; esac
        done
        export PATH
        return 0
    fi
    local name; name=$(basename "$script")
    if ! command -v sudo >/dev/null; then
        echo "$name: needs root (network namespaces) and sudo is not installed; run it as root" >&2
        exit 1
    fi
    # The user's toolchain, made explicit: root's rustup would look in /root.
    local c; c=$(command -v cargo || true)
    if [ -n "$c" ]; then
        export PM_CARGO=$c
        [ -n "${CARGO_HOME:-}" ] || [ ! -d "$HOME/.cargo" ] || export CARGO_HOME=$HOME/.cargo
        [ -n "${RUSTUP_HOME:-}" ] || [ ! -d "$HOME/.rustup" ] || export RUSTUP_HOME=$HOME/.rustup
    fi
    echo "$name: not root: re-running with sudo" >&2
    exec sudo --preserve-env=PATH,CARGO_HOME,RUSTUP_HOME,CARGO_TARGET_DIR,PM_CARGO "$script" "$@"
}

pm_find_cargo() {
    command -v cargo >/dev/null && return 0
    local h d
    h=$(pm__sudo_home || true)
    for d in "${PM_CARGO:+$(dirname "$PM_CARGO")}" "${CARGO_HOME:+$CARGO_HOME/bin}" \
        "${h:+$h/.cargo/bin}" "${HOME:+$HOME/.cargo/bin}" /root/.cargo/bin; do
        [ -n "$d" ] && [ -x "$d/cargo" ] || continue
        PATH=$d:$PATH; export PATH
        # A rustup proxy needs its home: the one next to that cargo's directory.
        if [ -z "${RUSTUP_HOME:-}" ] && [ -d "$d/../../.rustup" ]; then
            RUSTUP_HOME=$(cd "$d/../../.rustup" && pwd); export RUSTUP_HOME
        fi
        if [ -z "${CARGO_HOME:-}" ]; then CARGO_HOME=$(cd "$d/.." && pwd); export CARGO_HOME; fi
        return 0
    done
    return 1
}
