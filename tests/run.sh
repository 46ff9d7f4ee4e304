#!/usr/bin/env bash
# kprov's whole test suite on a fresh Debian 12 machine, as root:
#   bash tests/run.sh [PYTEST ARGS...]
# Installs what it needs (the Debian packages in tests/system-packages.txt; a venv with kprov and
# its test extras), builds the Debian test images from debootstrap unless they exist, checks all of
# it (tests/preflight.py: one line per missing item), then runs pytest, which includes ansible-lint,
# the real ansible-runner runs, and the Molecule scenarios.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

if [ "$(id -u)" != 0 ]; then
  exec sudo --preserve-env=PATH,CI bash "$0" "$@"
fi

step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
python=${PYTHON:-python3}
images=(localhost/kprov-debian:bookworm localhost/kprov-debian:trixie localhost/kprov-debian:bookworm-systemd
        localhost/kprov-debian:bookworm-build)

step "system packages (tests/system-packages.txt)"
read -r -a need <<<"$("$python" tests/preflight.py packages)"
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
"$python" tests/preflight.py check

step "python environment (.venv)"
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q '.[test]' 2>&1 | grep -v "^WARNING: Location" || true
# The suite tests the installed wheel (playbooks/ and templates/ inside it), so refresh kprov itself.
.venv/bin/python -m pip install -q --no-deps --force-reinstall . 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/kprov --version

step "container images"
export CONTAINERS_CONF=$root/tests/podman/containers.conf
tests/images/build.sh "${images[@]##*:}"

step "preflight"
image_args=()
for image in "${images[@]}"; do image_args+=(--image "$image"); done
"$python" tests/preflight.py check --venv .venv "${image_args[@]}"

step "pytest"
export PATH=$root/.venv/bin:$PATH
# Inside the suite a test that finds a tool or image missing fails instead of skipping:
# the preflight above has already installed and checked everything it uses.
export KPROV_TEST_STRICT=1
# Two workers: most of the suite's time is containers, apt and Molecule waiting on each other.
# Tests that share something of this host (the apply lock, zram0) stay on one worker, and the
# slowest go first (tests/conftest.py); KPROV_TEST_WORKERS=0 runs everything in this process.
workers=${KPROV_TEST_WORKERS:-2}
parallel=()
[ "$workers" = 0 ] || parallel=(-n "$workers" --dist loadscope --no-loadscope-reorder)
cd "$root/tests"  # import provision from the installed wheel, not the checkout
exec "$root/.venv/bin/python" -m pytest -c "$root/pyproject.toml" --rootdir "$root" "${parallel[@]}" "$root/tests" "$@"
