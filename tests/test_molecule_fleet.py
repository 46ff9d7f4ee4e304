"""The distcc farm scenario (molecule/fleet): a real distributed compile on podman containers."""

from __future__ import annotations

import pytest
from conftest import molecule_test

IMAGE = "localhost/kprov-debian:bookworm-build"  # tests/images/build.sh


@pytest.mark.podman
def test_molecule_fleet_scenario():
    out = molecule_test("fleet", IMAGE)
    # the verify play printed the servers' COMPILE_OK lines for client1's units
    assert "COMPILE_OK" in out
    assert "denied by access list" in out
