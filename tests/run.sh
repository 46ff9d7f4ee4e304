#!/usr/bin/env bash
# kprov's whole test suite on a fresh Debian 12 machine, as root:
#   bash tests/run.sh [PYTEST ARGS...]
# Installs what it needs (podman, runc, debootstrap, ccache, distcc; a venv with kprov and its test
# extras), builds the Debian test images from debootstrap unless they exist, then runs pytest,
# which includes ansible-lint, the real ansible-runner runs, and the Molecule scenarios.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

if [ "$(id -u)" != 0 ]; then
  exec sudo --preserve-env=PATH,CI bash "$0" "$@"
fi

step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step "system packages"
need=()
for pkg in podman runc debootstrap uidmap slirp4netns fuse-overlayfs iproute2 ccache distcc util-linux; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "ok: podman $(podman --version | awk '{print $3}'), runc, debootstrap, ccache, distcc"

step "python environment (.venv)"
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q '.[test]' 2>&1 | grep -v "^WARNING: Location" || true
# The suite tests the installed wheel (playbooks/ and templates/ inside it), so refresh kprov itself.
.venv/bin/python -m pip install -q --no-deps --force-reinstall . 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/kprov --version

step "container images"
export CONTAINERS_CONF=$root/tests/podman/containers.conf
tests/images/build.sh bookworm trixie

step "pytest"
export PATH=$root/.venv/bin:$PATH
cd "$root/tests"  # import provision from the installed wheel, not the checkout
exec "$root/.venv/bin/python" -m pytest -c "$root/pyproject.toml" --rootdir "$root" "$root/tests" "$@"
