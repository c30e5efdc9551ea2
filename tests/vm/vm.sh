#!/bin/bash
# tests/vm/vm.sh - the VM test tier: a QEMU guest that boots Debian's own stock kernel (which has
# cfg80211, mac80211_hwsim, the USB gadget and netem as modules) with this machine's root
# filesystem shared read-only (a tmpfs overlay on top), so a guest script runs the host's own
# hostapd, wpa_supplicant, dnsmasq, dbus-daemon and pathman's build output at the same paths.
# Needs root. See tests/vm/README.md.
#
#   vm.sh build
#       Builds (or checks) the cache in <repo>/target/vm/: the kernel package that
#       linux-image-amd64 depends on (apt-get download + dpkg-deb -x, never installed), its
#       modules.dep (depmod -b), the uncompressed vmlinux (PVH boot) and an initramfs
#       (busybox-static, the 9p/overlay modules, tests/vm/init). Quick when nothing changed.
#   vm.sh run [--timeout S] [--mem M] OUTDIR SCRIPT [ARGS...]
#       Boots the guest (building the cache first if there is none) and runs SCRIPT ARGS in it
#       as root (cwd OUTDIR; environment VM_OUT=OUTDIR, VM_KVER, VM_KDIR). OUTDIR is the only
#       writable host folder the guest sees (at the same path): results and logs go there, the
#       serial console goes to OUTDIR/console.log. Exits with SCRIPT's exit code; 124 (with a
#       message) when the guest did not finish within S seconds (default 300; qemu is killed),
#       and non-zero with a message when the guest cannot boot.
#   vm.sh info
#       Prints the cached kernel version and paths.
# OUTDIR and SCRIPT must be absolute paths without white space (they travel on the kernel
# command line); ARGS may contain anything (they travel through OUTDIR/.vm/args).
# Acceleration: TCG (-accel tcg,thread=multi) unless the kvm_intel or kvm_amd module is loaded
# (a /dev/kvm alone may be a paravirtual KVM that cannot run a stock kernel); VM_ACCEL=tcg|kvm
# overrides; VM_QEMU names another qemu-system-x86_64, VM_CACHE another cache folder.
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${VM_CACHE:-$REPO/target/vm}
LOCK=$CACHE/.lock
QEMU=${VM_QEMU:-qemu-system-x86_64}
# Modules the initramfs needs to reach the host root (with their dependencies).
INITRD_MODULES=(virtio_pci 9pnet_virtio 9p overlay)

die() { echo "vm.sh: $*" >&2; exit 1; }
TMPS=()
cleanup() { [ ${#TMPS[@]} -eq 0 ] || rm -rf "${TMPS[@]}"; }
QEMU_PIDFILE=""
# Interrupted (^C, a killed test): the guest goes too.
on_signal() {
    if [ -n "$QEMU_PIDFILE" ] && [ -s "$QEMU_PIDFILE" ]; then kill "$(cat "$QEMU_PIDFILE")" 2>/dev/null; fi
    exit 130
}
trap cleanup EXIT
trap on_signal INT TERM HUP
note() { echo "vm.sh: $*" >&2; }

[ "$(id -u)" = 0 ] || die "needs root (it boots a QEMU guest and builds its initramfs)"

need_tools() {   # need_tools WHY TOOL... - fail with the Debian package to install
    local why=$1 t missing=()
    shift
    for t in "$@"; do
        command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || [ -x "/sbin/$t" ] || missing+=("$t")
    done
    [ ${#missing[@]} -eq 0 ] || die "$why: missing ${missing[*]} (tests/lab/install-deps.sh installs them: qemu-system-x86 busybox-static kmod cpio gzip python3)"
}

# ------------------------------------------------------------------ kernel package
kernel_package() {   # the package linux-image-amd64 depends on, e.g. linux-image-6.1.0-57-amd64
    apt-cache depends linux-image-amd64 2>/dev/null \
        | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ && !n++ { print $2 }'
}

current_kver() { [ -f "$CACHE/current" ] && cat "$CACHE/current"; }

# Stamp of everything the initramfs is made of (so an edited init rebuilds it).
initramfs_stamp() {   # initramfs_stamp KVER
    { echo "$1"; cat "$HERE/init" "$HERE/stage2.sh" "$HERE/vm.sh"; busybox | sed -n 1p; } | sha256sum | cut -d' ' -f1
}

fetch_kernel() {   # fetch_kernel PKG -> unpacks into $CACHE/kernel-<kver>, sets FETCHED=<kver>
    local pkg=$1 dl kdir kver
    dl=$(mktemp -d "$CACHE/dl.XXXXXX")
    TMPS+=("$dl")
    note "downloading $pkg (about 70 MB; unpacked about 470 MB in $CACHE)"
    if ! (cd "$dl" && apt-get download "$pkg" >&2); then
        # Stale package lists name an ABI the archive no longer has: refresh them once.
        note "apt-get download $pkg failed: apt-get update, then again"
        apt-get update >&2 || true
        pkg=$(kernel_package)
        [ -n "$pkg" ] || die "apt-cache depends linux-image-amd64 names no kernel package even after apt-get update"
        (cd "$dl" && apt-get download "$pkg" >&2) \
            || die "apt-get download $pkg failed (is Debian's archive reachable?)"
    fi
    mkdir -p "$dl/x"
    dpkg-deb -x "$dl"/*.deb "$dl/x" || die "dpkg-deb -x of $pkg failed"
    kver=$(find "$dl/x/lib/modules" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sed -n 1p)
    if [ -z "$kver" ] || [ ! -f "$dl/x/boot/vmlinuz-$kver" ]; then
        die "$pkg has no /lib/modules/<version> and /boot/vmlinuz-<version>"
    fi
    kdir=$CACHE/kernel-$kver
    rm -rf "$kdir"
    mv "$dl/x" "$kdir"
    echo "$pkg" >"$kdir/package"
    FETCHED=$kver
}

# Linux's scripts/extract-vmlinux, rewritten: the bzImage header says where the compressed
# payload is (boot protocol 2.08+: setup_sects at 0x1f1, payload_offset/length at 0x248/0x24c);
# its magic says the compressor. Falls back to scanning for a magic. Writes an ELF vmlinux.
extract_vmlinux() {   # extract_vmlinux BZIMAGE OUT
    /usr/bin/python3 - "$1" "$2" <<'PY'
import bz2, gzip, lzma, shutil, struct, subprocess, sys, zlib
src, out = sys.argv[1], sys.argv[2]
img = open(src, "rb").read()

def gunzip(b):
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(b)
def unxz(b):
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(b)
def unlzma(b):
    return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(b)
def unbz2(b):
    return bz2.BZ2Decompressor().decompress(b)
def tool(*cmd):
    def run(b):
        if not shutil.which(cmd[0]):
            raise RuntimeError(cmd[0] + " not installed")
        return subprocess.run(cmd, input=b, capture_output=True).stdout
    return run
MAGICS = [
    (b"\x1f\x8b\x08", gunzip), (b"\xfd7zXZ\x00", unxz), (b"\x28\xb5\x2f\xfd", tool("zstd", "-dcq")),
    (b"BZh", unbz2), (b"\x5d\x00\x00", unlzma), (b"\x02\x21\x4c\x18", tool("lz4", "-dcq")),
]

def try_at(off):
    for magic, fn in MAGICS:
        if img.startswith(magic, off):
            try:
                data = fn(img[off:])
            except Exception:
                continue
            if data[:4] == b"\x7fELF":
                return data
    return None

data = None
if img[0x202:0x206] == b"HdrS" and struct.unpack_from("<H", img, 0x206)[0] >= 0x208:
    setup = (img[0x1f1] or 4) + 1
    off, length = struct.unpack_from("<II", img, 0x248)
    data = try_at(setup * 512 + off)
if data is None:
    for magic, _ in MAGICS:
        i = img.find(magic)
        while i >= 0 and data is None:
            data = try_at(i)
            i = img.find(magic, i + 1)
        if data is not None:
            break
if data is None:
    sys.exit("extract-vmlinux: no compressed ELF kernel found in " + src)
open(out, "wb").write(data)
PY
}

build_initramfs() {   # build_initramfs KVER KDIR OUT
    local kver=$1 kdir=$2 out=$3 root line mod order=()
    root=$(mktemp -d "$CACHE/initramfs.XXXXXX")
    TMPS+=("$root")
    mkdir -p "$root"/{bin,dev,proc,sys,run,mnt,newroot,modules}
    cp "$(command -v busybox)" "$root/bin/busybox"
    file -L "$root/bin/busybox" 2>/dev/null | grep 'statically linked' >/dev/null \
        || die "$(command -v busybox) is not statically linked (install busybox-static)"
    # Module order (dependencies first) as modprobe would load them; builtins are skipped.
    while read -r line; do
        case "$line" in
            insmod\ *)
                mod=${line#insmod }; mod=${mod%% *}
                local base
                base=$(basename "$mod"); base=${base%.xz}; base=${base%.zst}; base=${base%.gz}
                if ! printf '%s\n' "${order[@]+"${order[@]}"}" | grep -x "$base" >/dev/null; then
                    case "$mod" in
                        *.xz)  xz -dc "$mod" >"$root/modules/$base" ;;
                        *.zst) zstd -dcq "$mod" >"$root/modules/$base" ;;
                        *.gz)  gzip -dc "$mod" >"$root/modules/$base" ;;
                        *)     cp "$mod" "$root/modules/$base" ;;
                    esac
                    order+=("$base")
                fi ;;
        esac
    done < <(modprobe -d "$kdir" -S "$kver" --show-depends -a "${INITRD_MODULES[@]}" 2>&1 \
             || die "modprobe --show-depends ${INITRD_MODULES[*]} failed for $kver")
    [ ${#order[@]} -gt 0 ] || die "modprobe --show-depends found none of ${INITRD_MODULES[*]} in $kdir"
    printf '%s\n' "${order[@]+"${order[@]}"}" >"$root/modules/order"
    install -m 755 "$HERE/init" "$root/init"
    install -m 755 "$HERE/stage2.sh" "$root/stage2.sh"
    (cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -6) >"$out.tmp"
    mv "$out.tmp" "$out"
}

cmd_build() {
    need_tools "vm.sh build" busybox cpio gzip depmod modprobe dpkg-deb apt-get file
    [ -x /usr/bin/python3 ] || die "vm.sh build: /usr/bin/python3 missing (apt-get install python3)"
    mkdir -p "$CACHE"
    local pkg kver stamp kdir
    pkg=$(kernel_package)
    kver=$(current_kver || true)
    # Quick path (no lock): the cache is complete for the package apt wants.
    if [ -n "$kver" ] && [ -f "$CACHE/kernel-$kver/package" ] \
        && { [ -z "$pkg" ] || [ "$(cat "$CACHE/kernel-$kver/package")" = "$pkg" ]; } \
        && [ "$(cat "$CACHE/initramfs-$kver.stamp" 2>/dev/null)" = "$(initramfs_stamp "$kver")" ] \
        && [ -f "$CACHE/vmlinux-$kver" ]; then
        [ -n "$pkg" ] || note "apt-cache knows no linux-image-amd64 (no apt-get update?); using the cached $kver"
        echo "$kver"; return 0
    fi
    exec 9>"$LOCK"
    flock -x 9   # one build at a time; waits for guests that run (they hold it shared)
    rm -rf "$CACHE"/dl.?????? "$CACHE"/initramfs.??????   # left by a build that was killed
    kver=$(current_kver || true)
    if [ -z "$pkg" ] && [ -z "$kver" ]; then   # a fresh machine without package lists
        note "apt-cache knows no linux-image-amd64: apt-get update"
        apt-get update >&2 || true
        pkg=$(kernel_package)
    fi
    if [ -z "$pkg" ]; then
        if [ -z "$kver" ] || [ ! -d "$CACHE/kernel-$kver" ]; then
            die "cannot find the kernel package: apt-cache depends linux-image-amd64 names none (run apt-get update; is this Debian?)"
        fi
        note "apt-cache knows no linux-image-amd64 (no apt-get update?); using the cached $kver"
    elif [ -z "$kver" ] || [ "$(cat "$CACHE/kernel-$kver/package" 2>/dev/null)" != "$pkg" ]; then
        local old=$kver
        fetch_kernel "$pkg"
        kver=$FETCHED
        depmod -b "$CACHE/kernel-$kver" "$kver" || die "depmod -b failed for $kver"
        echo "$kver" >"$CACHE/current.tmp" && mv "$CACHE/current.tmp" "$CACHE/current"
        if [ -n "$old" ] && [ "$old" != "$kver" ]; then   # an old ABI: 470 MB we no longer need
            rm -rf "$CACHE/kernel-$old" "$CACHE/vmlinux-$old" "$CACHE/initramfs-$old".*
        fi
    fi
    kdir=$CACHE/kernel-$kver
    [ -f "$kdir/lib/modules/$kver/modules.dep" ] || depmod -b "$kdir" "$kver" || die "depmod -b failed for $kver"
    if [ ! -f "$CACHE/vmlinux-$kver" ]; then
        note "extracting vmlinux from vmlinuz-$kver"
        extract_vmlinux "$kdir/boot/vmlinuz-$kver" "$CACHE/vmlinux-$kver.tmp" || die "cannot extract vmlinux from $kdir/boot/vmlinuz-$kver"
        mv "$CACHE/vmlinux-$kver.tmp" "$CACHE/vmlinux-$kver"
    fi
    stamp=$(initramfs_stamp "$kver")
    if [ "$(cat "$CACHE/initramfs-$kver.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -f "$CACHE/initramfs-$kver.cpio.gz" ]; then
        note "building initramfs-$kver.cpio.gz"
        build_initramfs "$kver" "$kdir" "$CACHE/initramfs-$kver.cpio.gz"
        echo "$stamp" >"$CACHE/initramfs-$kver.stamp"
    fi
    exec 9>&-
    echo "$kver"
}

# ------------------------------------------------------------------ run
accel() {
    case "${VM_ACCEL:-}" in
        tcg) echo "tcg,thread=multi"; return ;;
        kvm) echo "kvm"; return ;;
        "") ;;
        *) die "VM_ACCEL must be tcg or kvm, not $VM_ACCEL" ;;
    esac
    # /dev/kvm may be a paravirtual KVM (kvm_pvm) that hangs a stock kernel: only a real
    # kvm_intel/kvm_amd counts.
    if [ -e /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
        echo "kvm"
    else
        echo "tcg,thread=multi"
    fi
}

cmd_run() {
    local timeout=300 mem=1G
    while [ $# -gt 0 ]; do
        case "$1" in
            --timeout) timeout=$2; shift 2 ;;
            --timeout=*) timeout=${1#--timeout=}; shift ;;
            --mem) mem=$2; shift 2 ;;
            --mem=*) mem=${1#--mem=}; shift ;;
            --) shift; break ;;
            -*) die "run: unknown option $1" ;;
            *) break ;;
        esac
    done
    [ $# -ge 2 ] || die "usage: vm.sh run [--timeout S] [--mem M] OUTDIR SCRIPT [ARGS...]"
    local out=$1 script=$2
    shift 2
    case "$timeout" in ''|*[!0-9]*) die "run: --timeout wants whole seconds, not $timeout" ;; esac
    need_tools "the VM tier cannot boot a guest" "$QEMU" timeout flock
    mkdir -p "$out"
    out=$(cd "$out" && pwd -P)
    case "$script" in /*) ;; *) script=$(readlink -f "$script") ;; esac
    case "$out$script" in *[[:space:]]*) die "OUTDIR and SCRIPT must not contain white space (kernel command line): $out $script" ;; esac
    [ -f "$script" ] || die "guest script $script not found"
    [ -x "$script" ] || die "guest script $script is not executable"

    local kver
    kver=$(current_kver || true)
    if [ -z "$kver" ] || [ ! -f "$CACHE/initramfs-$kver.cpio.gz" ] || [ ! -f "$CACHE/vmlinux-$kver" ]; then
        note "no guest kernel cached yet: building it first"
        cmd_build >/dev/null
        kver=$(current_kver)
    fi
    local kdir=$CACHE/kernel-$kver
    # Held shared while the guest runs: a build that would replace the kernel waits.
    exec 9>"$LOCK"
    flock -s 9

    rm -rf "$out/.vm"
    mkdir -p "$out/.vm"
    : >"$out/.vm/args"
    [ $# -eq 0 ] || printf '%s\0' "$@" >"$out/.vm/args"
    local console=$out/console.log ac
    ac=$(accel)
    local cmdline="console=ttyS0 rdinit=/init panic=-1 quiet mitigations=off vm.script=$script vm.kdir=$kdir vm.kver=$kver vm.out=$out"
    local start=$SECONDS rc=0
    note "booting $kver ($ac, $mem): $script${*:+$(printf ' %q' "$@")} (console: $console, timeout ${timeout}s)"
    QEMU_PIDFILE=$out/.vm/qemu.pid
    # In the background, so that a signal to vm.sh is handled at once (on_signal).
    (
        set -o pipefail
        timeout -k 5 "$timeout" "$QEMU" \
            -accel "$ac" -cpu max -M q35 -m "$mem" -smp 2 -nographic -no-reboot \
            -nic none -monitor none -serial stdio -pidfile "$QEMU_PIDFILE" \
            -kernel "$CACHE/vmlinux-$kver" -initrd "$CACHE/initramfs-$kver.cpio.gz" \
            -append "$cmdline" \
            -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
            -virtfs "local,path=$out,mount_tag=out,security_model=none,multidevs=remap" \
            </dev/null 2>&1 | tee "$console"
    ) &
    wait $! || rc=$?
    QEMU_PIDFILE=""
    local took=$((SECONDS - start))
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        if grep -q 'vm-init: running' "$console"; then
            note "TIMEOUT: the guest script did not finish within ${timeout}s; qemu was killed (console: $console)"
        else
            note "TIMEOUT: the guest did not boot to its script within ${timeout}s (a hung kernel? with KVM see tests/vm/README.md); qemu was killed (console: $console)"
        fi
        exit 124
    fi
    if [ "$rc" != 0 ]; then
        die "$QEMU failed (exit $rc) after ${took}s: the guest could not boot (console: $console)"
    fi
    if [ ! -f "$out/.vm/exit" ]; then
        if ! grep -q 'vm-init: running' "$console"; then
            die "the guest did not boot to its script (no 'vm-init: running' on the console, ${took}s; console: $console)"
        fi
        die "the guest script $script did not report an exit code (it crashed, or the guest panicked; console: $console)"
    fi
    local grc
    grc=$(cat "$out/.vm/exit")
    note "guest script exited $grc after ${took}s in all"
    exit "$grc"
}

cmd_info() {
    local kver
    kver=$(current_kver || true)
    [ -n "$kver" ] || die "nothing cached in $CACHE (run vm.sh build)"
    echo "kver=$kver"
    echo "package=$(cat "$CACHE/kernel-$kver/package" 2>/dev/null)"
    echo "kdir=$CACHE/kernel-$kver"
    echo "vmlinux=$CACHE/vmlinux-$kver"
    echo "initramfs=$CACHE/initramfs-$kver.cpio.gz"
    echo "accel=$(accel)"
}

case "${1:-}" in
    build) shift; cmd_build "$@" >/dev/null; note "ready: $(current_kver) in $CACHE" ;;
    run)   shift; cmd_run "$@" ;;
    info)  shift; cmd_info ;;
    -h|--help|"") sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ] ;;
    *) die "unknown command $1 (build | run | info)" ;;
esac
