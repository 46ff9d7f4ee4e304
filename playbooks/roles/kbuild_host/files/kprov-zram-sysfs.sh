#!/bin/sh
# Activate swap on a zram device through /sys, for hosts without a service manager that could run
# zram-tools' unit (zramswap's own modprobe fails where zram is built into the kernel).
#
#   kprov-zram-sysfs.sh DEVICE ALGORITHM PERCENT PRIORITY STATE_FILE CHECK
#
# Sizes the device like zramswap does (MemTotal x PERCENT / 100), records what it activated in
# STATE_FILE, and only ever resets a device that is not swap, or that is swap with exactly the
# settings it recorded itself. It never touches any other swap device. CHECK=1 reports what it
# would do and changes nothing. Prints one JSON object: changed, action, msg.
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

mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
page=$(getconf PAGESIZE 2>/dev/null || echo 4096)
want_size=$((mem_kb * percent / 100 * 1024))
want_size=$(((want_size + page - 1) / page * page))   # the kernel page-aligns disksize

cur_algo=$(sed -n 's/.*\[\([^]]*\)\].*/\1/p' "$sys/comp_algorithm")
cur_size=$(cat "$sys/disksize")
cur_prio=$(awk -v n="$node" '$1 == n {print $5}' /proc/swaps)
recorded=$(cat "$state" 2>/dev/null || true)
want="device=$dev algorithm=$algo disksize=$want_size priority=$prio"
current="device=$dev algorithm=$cur_algo disksize=$cur_size priority=$cur_prio"

record() {
    mkdir -p "$(dirname "$state")" && printf '%s\n' "$want" >"$state.tmp" && mv "$state.tmp" "$state" ||
        die "cannot write $state"
}

activate() {
    echo "$algo" >"$sys/comp_algorithm" || die "cannot set $dev comp_algorithm to $algo"
    echo "$want_size" >"$sys/disksize" || die "cannot set $dev disksize to $want_size"
    mkswap "$node" >/dev/null 2>&1 || die "mkswap $node failed"
    swapon -p "$prio" "$node" || die "swapon -p $prio $node failed"
    record
}

if [ -n "$cur_prio" ]; then
    if [ "$current" = "$want" ]; then
        [ "$recorded" = "$want" ] && emit false unchanged "$dev is active swap: $want"
        [ "$check" = 1 ] && emit true record "would record $dev (already active as planned)"
        record
        emit true record "$dev was already active as planned; recorded it in $state"
    fi
    [ "$recorded" = "$current" ] ||
        emit false foreign "$dev is active swap not set up by kprov ($current); left as it is"
    [ "$check" = 1 ] && emit true reconfigure "would reconfigure $dev: $current -> $want"
    swapoff "$node" || die "swapoff $node failed (not enough free memory?)"
    echo 1 >"$sys/reset" || die "cannot reset $dev"
    activate
    emit true reconfigure "reconfigured $dev: $want"
fi

grep -q "^$node " /proc/mounts && emit false foreign "$node is mounted; left as it is"
if [ "$cur_size" != 0 ] && { [ "$cur_algo" != "$algo" ] || [ "$cur_size" != "$want_size" ]; }; then
    # Initialised but not swap (a failed zramswap stop leaves it so): the kernel refuses the reset
    # while anything holds the device open.
    [ "$check" = 1 ] && emit true activate "would reset the unused $dev and activate it: $want"
    echo 1 >"$sys/reset" || die "cannot reset $dev (busy?)"
    cur_size=0
fi
[ "$check" = 1 ] && emit true activate "would activate $dev: $want"
if [ "$cur_size" = 0 ]; then
    activate
else
    mkswap "$node" >/dev/null 2>&1 || die "mkswap $node failed"
    swapon -p "$prio" "$node" || die "swapon -p $prio $node failed"
    record
fi
emit true activate "activated $dev: $want"
