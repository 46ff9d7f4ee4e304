#!/bin/sh
# Activate swap on a zram device through /sys, for hosts without a service manager that could run
# zram-tools' unit (zramswap's own modprobe fails where zram is built into the kernel).
#
#   kprov-zram-sysfs.sh DEVICE ALGORITHM PERCENT PRIORITY STATE_FILE CHECK
#
# Sizes the device like zramswap does (MemTotal x PERCENT / 100). Ownership is STATE_FILE, never a
# guess: a device is kprov's only when the record names it with this boot's boot_id (nothing
# re-creates a /sys device after a reboot, so an older record vouches for nothing). The record is
# written with phase=activating before the first change and phase=active after swapon, so a run
# killed half-way recognises its own half-done device and finishes it. A device that is not kprov's
# - active swap, initialised, or mounted - is left exactly as it is, even when its settings happen
# to match the plan. CHECK=1 reports what it would do and changes nothing.
# Prints one JSON object: changed, action, msg.
set -u

dev=$1 algo=$2 percent=$3 prio=$4 state=$5 check=$6
sys=/sys/block/$dev
node=/dev/$dev

emit() {
    printf '{"changed": %s, "action": "%s", "msg": "%s"}\n' "$1" "$2" "$3"
    exit 0
}
die() {
    printf '{"changed": false, "action": "failed", "msg": "%s"}\n' "$1"
    exit 1
}

[ -b "$node" ] && [ -w "$sys/disksize" ] || die "$node or a writable $sys is missing"
grep -qw -- "$algo" "$sys/comp_algorithm" ||
    die "the kernel offers no $algo for $dev (it offers: $(tr -d '[]' <"$sys/comp_algorithm"))"
boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null) || boot=
[ -n "$boot" ] || die "cannot read /proc/sys/kernel/random/boot_id"

mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
page=$(getconf PAGESIZE 2>/dev/null || echo 4096)
want_size=$((mem_kb * percent / 100 * 1024))
want_size=$(((want_size + page - 1) / page * page))   # the kernel page-aligns disksize

cur_algo=$(sed -n 's/.*\[\([^]]*\)\].*/\1/p' "$sys/comp_algorithm")
cur_size=$(cat "$sys/disksize")
cur_prio=$(awk -v n="$node" '$1 == n {print $5}' /proc/swaps)
want="device=$dev algorithm=$algo disksize=$want_size priority=$prio"
current="device=$dev algorithm=$cur_algo disksize=$cur_size priority=$cur_prio"

# This boot's record for this device: "PHASE SETTINGS", or empty when kprov does not own it.
mine=$(awk -v b="$boot" -v d="$dev" '
    { delete f; for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = substr($i, length(kv[1]) + 2) } }
    f["mode"] == "sysfs" && f["boot_id"] == b && f["device"] == d {
        printf "%s device=%s algorithm=%s disksize=%s priority=%s\n", f["phase"], d, f["algorithm"], f["disksize"], f["priority"]
    }' "$state" 2>/dev/null | tail -n 1)
phase=${mine%% *}
recorded=${mine#* }

record() {
    mkdir -p "$(dirname "$state")" &&
        printf 'mode=sysfs boot_id=%s phase=%s %s\n' "$boot" "$1" "$want" >"$state.tmp" &&
        mv "$state.tmp" "$state" || die "cannot write $state"
}

activate() {
    record activating
    echo "$algo" >"$sys/comp_algorithm" || die "cannot set $dev comp_algorithm to $algo"
    echo "$want_size" >"$sys/disksize" || die "cannot set $dev disksize to $want_size"
    mkswap "$node" >/dev/null 2>&1 || die "mkswap $node failed"
    swapon -p "$prio" "$node" || die "swapon -p $prio $node failed"
    record active
}

if [ -n "$cur_prio" ]; then
    [ -n "$mine" ] || emit false foreign "$dev is active swap that kprov did not set up ($current); left as it is"
    if [ "$current" = "$want" ]; then
        [ "$phase" = active ] && [ "$recorded" = "$want" ] && emit false unchanged "$dev is active swap: $want"
        # swapon ran but the run ended before it recorded phase=active: finish the record.
        [ "$check" = 1 ] && emit true record "would record $dev as active: $want"
        record active
        emit true record "$dev is active swap: $want (recorded)"
    fi
    [ "$check" = 1 ] && emit true reconfigure "would reconfigure $dev: $current -> $want"
    swapoff "$node" || die "swapoff $node failed (not enough free memory?)"
    echo 1 >"$sys/reset" || die "cannot reset $dev"
    activate
    emit true reconfigure "reconfigured $dev: $want"
fi

grep -q "^$node " /proc/mounts && emit false foreign "$node is mounted; left as it is"
if [ "$cur_size" != 0 ]; then
    # Initialised but not swap: kprov's own half-done activation, or someone else's device.
    [ -n "$mine" ] || emit false foreign "$dev is in use ($cur_size bytes) and kprov did not set it up; left as it is"
    [ "$check" = 1 ] && emit true activate "would reset $dev (left half-done by an earlier run) and activate it: $want"
    echo 1 >"$sys/reset" || die "cannot reset $dev (busy?)"
fi
[ "$check" = 1 ] && emit true activate "would activate $dev: $want"
activate
emit true activate "activated $dev: $want"
