#!/usr/bin/env bash
# Build the Debian images that Molecule and the podman tests use, from debootstrap (no container
# registry is needed). An image that already exists is kept; FORCE=1 rebuilds.
#
#   tests/images/build.sh [NAME...]      default: bookworm trixie bookworm-systemd
#
# NAME is a Debian suite (image localhost/kprov-debian:SUITE, a minbase root from debootstrap)
# or SUITE-systemd (image localhost/kprov-debian:SUITE-systemd: that image with systemd added,
# booting /sbin/init; run it with --systemd=always).
set -euo pipefail

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(bookworm trixie bookworm-systemd)

# podman run (the systemd images) needs runc and the lower ulimits on hosts like the CI machines.
export CONTAINERS_CONF=${CONTAINERS_CONF:-$(cd "$(dirname "$0")/.." && pwd)/podman/containers.conf}

# The Debian mirror this machine's apt uses (deb822 or one-line sources), else the default one.
mirror=${KPROV_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null \
             | awk '{print $2}' | grep -v security | head -n1 || true)
fi
if [ -z "$mirror" ]; then
  mirror=$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

# Base images looked at, and built, by this run: an image derived from a built one is rebuilt.
declare -A seen=() built=()

build_base() {
  local suite=$1 image="localhost/kprov-debian:$1" root start
  [ -z "${seen[$suite]:-}" ] || return 0
  seen[$suite]=1
  if [ "${FORCE:-0}" != 1 ] && podman image exists "$image"; then
    echo "image $image: present"
    return 0
  fi
  root=$(mktemp -d "/var/tmp/kprov-rootfs-${suite}.XXXXXX")
  trap "rm -rf '$root' '$root.log'" EXIT
  echo "image $image: debootstrap $suite from $mirror"
  start=$(date +%s)
  debootstrap --variant=minbase --include=python3,sudo,iproute2,procps \
    "$suite" "$root" "$mirror" >"$root.log" 2>&1 || { tail -n 30 "$root.log"; exit 1; }
  # The mirror may be a dated snapshot: accept its Release file whatever its Valid-Until says.
  cat >"$root/etc/apt/apt.conf.d/90kprov-test" <<'APT'
Acquire::Check-Valid-Until "false";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT
  echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"
  rm -f "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -c . | podman import --change 'CMD ["/bin/sleep", "infinity"]' - "$image" >/dev/null
  rm -rf "$root" "$root.log"
  trap - EXIT
  built[$suite]=1
  echo "image $image: built in $(( $(date +%s) - start ))s"
}

# Derived from the base image (apt from the same mirror) rather than a second debootstrap: the
# package install is a fraction of a debootstrap's time.
build_systemd() {
  local suite=$1 image="localhost/kprov-debian:$1-systemd" ctr log start
  build_base "$suite"
  if [ "${FORCE:-0}" != 1 ] && [ -z "${built[$suite]:-}" ] && podman image exists "$image"; then
    echo "image $image: present"
    return 0
  fi
  ctr="kprov-image-build-$suite-systemd-$$"
  log=$(mktemp "/var/tmp/kprov-image-$suite-systemd.XXXXXX")
  trap "podman rm -f '$ctr' >/dev/null 2>&1 || true; rm -f '$log'" EXIT
  echo "image $image: systemd added to localhost/kprov-debian:$suite"
  start=$(date +%s)
  podman run --name "$ctr" "localhost/kprov-debian:$suite" sh -c \
    'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd systemd-sysv dbus \
     && apt-get clean && rm -rf /var/lib/apt/lists/*' >"$log" 2>&1 || { tail -n 30 "$log"; exit 1; }
  # systemd as PID 1 ignores SIGTERM: SIGRTMIN+3 is its shutdown request.
  podman commit -q --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' "$ctr" "$image" >/dev/null
  podman rm -f "$ctr" >/dev/null
  rm -f "$log"
  trap - EXIT
  echo "image $image: built in $(( $(date +%s) - start ))s"
}

for name in "${names[@]}"; do
  case "$name" in
    *-systemd) build_systemd "${name%-systemd}" ;;
    *) build_base "$name" ;;
  esac
done
