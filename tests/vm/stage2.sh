#!/bin/bash
# tests/vm/stage2.sh - PID 1 of the guest after switch_root (the host's bash on the overlay
# root): runs the guest script with the arguments from OUT/.vm/args, writes its exit code to
# OUT/.vm/exit, powers off. Arguments (from tests/vm/init): SCRIPT OUT KVER KDIR.
SCRIPT=$1 OUT=$2 KVER=$3 KDIR=$4
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8
export VM_OUT=$OUT VM_KVER=$KVER VM_KDIR=$KDIR VM_SCRIPT=$SCRIPT

off() {
    sync
    /bin/busybox poweroff -f 2>/dev/null
    echo o >/proc/sysrq-trigger
    sleep 10
}
trap off EXIT

hostname pm-vm 2>/dev/null
ip link set lo up 2>/dev/null
ARGS=()
if [ -s "$OUT/.vm/args" ]; then mapfile -d '' ARGS <"$OUT/.vm/args"; fi
cd "$OUT" || { echo "vm-init: cannot cd $OUT"; echo 255 >"$OUT/.vm/exit"; exit; }
echo "vm-init: up after $(cut -d' ' -f1 /proc/uptime) s (kernel $KVER)" >"$OUT/.vm/boot"
cat "$OUT/.vm/boot"
rc=0
# Not exec: PID 1 must stay to record the exit code and power off.
"$SCRIPT" "${ARGS[@]}" </dev/null || rc=$?
echo "$rc" >"$OUT/.vm/exit"
echo "vm-init: exit=$rc after $(cut -d' ' -f1 /proc/uptime) s"
