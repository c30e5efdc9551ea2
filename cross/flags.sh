# cross/flags.sh - sourced by build.sh and test.sh: the rustflags of a static musl release
# build of one target. .cargo/config.toml's target rustflags say the same (RUSTFLAGS replaces
# them, so the scripts spell them out): a change here is a change there.
#
# x86_64 and aarch64: LLVM's machine outliner on every function (`always`), three rounds. At
# opt-level z it already runs, but only on functions marked minsize, and std's code (built by
# the Rust project at opt-level 3) carries no such mark. Outlining repeated instruction
# sequences into shared calls there too, and again on the code outlined once, takes aarch64
# from 1,886,736 to 1,842,704 bytes and x86_64 from 2,325,848 to 2,238,808. test.sh runs the
# unit tests built this way (aarch64 under qemu-user). armv7 keeps LLVM's default: it cannot
# be built or run here.
pm_target_rustflags() {   # pm_target_rustflags TARGET
    local f="-C target-feature=+crt-static -C link-self-contained=yes -C link-arg=--icf=all -C link-arg=-zpack-relative-relocs"
    case "$1" in
        x86_64-*|aarch64-*) f="$f -C llvm-args=-enable-machine-outliner=always -C llvm-args=-machine-outliner-reruns=3" ;;
    esac
    echo "$f"
}
