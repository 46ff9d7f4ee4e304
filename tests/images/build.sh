#!/usr/bin/env bash
# Build the Debian base images that Molecule and the podman tests use, from debootstrap (no
# container registry is needed). An image that already exists is kept; FORCE=1 rebuilds.
#
#   tests/images/build.sh [SUITE...]      default: bookworm trixie
#
# Image names: localhost/kprov-debian:SUITE
set -euo pipefail

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(bookworm trixie)

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

for suite in "${suites[@]}"; do
  image="localhost/kprov-debian:${suite}"
  if [ "${FORCE:-0}" != 1 ] && podman image exists "$image"; then
    echo "image $image: present"
    continue
  fi
  root=$(mktemp -d "/var/tmp/kprov-rootfs-${suite}.XXXXXX")
  trap 'rm -rf "$root"' EXIT
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
  echo "image $image: built in $(( $(date +%s) - start ))s"
done
