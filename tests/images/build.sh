#!/usr/bin/env bash
# Build the Debian images that Molecule and the podman tests use, from debootstrap (no container
# registry is needed). An image that already exists is kept; FORCE=1 rebuilds.
#
#   tests/images/build.sh [NAME...]      default: bookworm trixie bookworm-systemd bookworm-build
#
# NAME is a Debian suite (image localhost/kprov-debian:SUITE, a minbase root from debootstrap),
# SUITE-systemd (image localhost/kprov-debian:SUITE-systemd: that image with systemd added,
# booting /sbin/init; run it with --systemd=always) or SUITE-build (that image with the compiler,
# ccache, distcc and zram-tools already installed, for tests whose point is not the install:
# molecule/fleet, the later task boundaries of tests/crash_every_task.py).
#
# For each suite it also fills an apt cache on this host, $KPROV_APT_CACHE/SUITE (default
# /var/cache/kprov-test/apt/SUITE): the package lists and the .deb files of every package the
# tests install there (the role's package lists, python3-apt). The tests mount it into their
# containers as overlay volumes (tests/conftest.py: apt_cache_volumes), so each container reads
# the cache and writes only to its own layer: apt in the container still runs in full, and no
# container sees another's lock or download. A cache filled for the same package list is kept;
# FORCE=1 refills.
set -euo pipefail

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(bookworm trixie bookworm-systemd bookworm-build)

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

# The packages the tests install in containers: the role's Debian lists (one name a line, or
# an inline [a, b] list; the shared cache store's Redis, nginx and cron too), and python3-apt,
# which Ansible's apt module installs on first use.
role_vars=$(cd "$(dirname "$0")/../.." && pwd)/playbooks/roles/kbuild_host/vars/Debian.yml
test_packages() {
  awk '
    /^__kbuild_host_build_packages:/ { inlist = 1; next }
    inlist && /^ *- / { sub(/^ *- */, ""); print; next }
    { inlist = 0 }
    /^__kbuild_host_(zram|ccache|distcc|redis|nginx|cron)_packages: *\[/ { sub(/^[^[]*\[/, ""); sub(/\].*/, ""); gsub(/[ ,]+/, "\n"); print }
  ' "$role_vars" | grep -v '^$'
  printf '%s\n' python3-apt libc6-dev
}

apt_cache=${KPROV_APT_CACHE:-/var/cache/kprov-test/apt}

declare -A filled=()

fill_apt_cache() {
  local suite=$1 dir="$apt_cache/$1" ctr log start
  [ -z "${filled[$suite]:-}" ] || return 0
  filled[$suite]=1
  # The marker holds the package list it was filled for: a changed list refills the cache.
  if [ "${FORCE:-0}" != 1 ] && [ -z "${built[$suite]:-}" ] && [ -f "$dir/filled" ] \
     && [ "$(cat "$dir/filled")" = "$(test_packages | sort -u)" ]; then
    echo "apt cache $dir: present"
    return 0
  fi
  rm -rf "$dir"
  mkdir -p "$dir/archives/partial" "$dir/lists/partial"
  ctr="kprov-apt-cache-$suite-$$"
  log=$(mktemp "/var/tmp/kprov-apt-cache-$suite.XXXXXX")
  trap "podman rm -f '$ctr' >/dev/null 2>&1 || true; rm -f '$log'" EXIT
  start=$(date +%s)
  # shellcheck disable=SC2046 # one package name per word
  podman run --rm --name "$ctr" -v "$dir/archives:/var/cache/apt/archives" -v "$dir/lists:/var/lib/apt/lists" \
    "localhost/kprov-debian:$suite" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --download-only "$@"' sh $(test_packages) >"$log" 2>&1 \
    || { tail -n 30 "$log"; exit 1; }
  rm -f "$dir"/archives/lock "$dir"/lists/lock
  test_packages | sort -u >"$dir/filled"
  rm -f "$log"
  trap - EXIT
  echo "apt cache $dir: $(find "$dir/archives" -name '*.deb' | wc -l) packages in $(( $(date +%s) - start ))s"
}

#: What SUITE-build adds: the packages the farm and crash tests give the role to install.
build_packages=(ccache distcc gcc libc6-dev make zram-tools python3-apt)

build_build() {
  local suite=$1 image="localhost/kprov-debian:$1-build" ctr log start
  build_base "$suite"
  fill_apt_cache "$suite"
  if [ "${FORCE:-0}" != 1 ] && [ -z "${built[$suite]:-}" ] && podman image exists "$image"; then
    echo "image $image: present"
    return 0
  fi
  ctr="kprov-image-build-$suite-build-$$"
  log=$(mktemp "/var/tmp/kprov-image-$suite-build.XXXXXX")
  trap "podman rm -f '$ctr' >/dev/null 2>&1 || true; rm -f '$log'" EXIT
  echo "image $image: ${build_packages[*]} added to localhost/kprov-debian:$suite"
  start=$(date +%s)
  podman run --name "$ctr" -v "$apt_cache/$suite/archives:/var/cache/apt/archives:O" \
    -v "$apt_cache/$suite/lists:/var/lib/apt/lists:O" "localhost/kprov-debian:$suite" sh -c \
    'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"' \
    sh "${build_packages[@]}" >"$log" 2>&1 || { tail -n 30 "$log"; exit 1; }
  podman commit -q "$ctr" "$image" >/dev/null
  podman rm -f "$ctr" >/dev/null
  rm -f "$log"
  trap - EXIT
  echo "image $image: built in $(( $(date +%s) - start ))s"
}

for name in "${names[@]}"; do
  case "$name" in
    *-systemd) build_systemd "${name%-systemd}" ;;
    *-build) build_build "${name%-build}" ;;
    *) build_base "$name" ;;
  esac
done
for name in "${names[@]}"; do
  case "$name" in
    *-systemd|*-build) ;;
    *) fill_apt_cache "$name" ;;
  esac
done
