"""Killed applies converge: SIGKILL kprov and ansible-playbook inside every area, then apply again.

One container is converged cleanly: its manifest (tests/crash_support.py) is the reference. It
starts with the test's packages installed (bookworm-build): its install is not what is tested. A
second container, from the plain image, is applied to six times, each run killed (kprov and its
ansible-playbook, SIGKILL, by a test callback) after the second task that ran in one area (the
first in hosts, its only one) of the role - packages, zram, ccache, distcc, hosts, build env -
each run getting one area further than the last. Then one plain apply must reach the clean run's
end state, and the apply after it must change nothing.
tests/crash_every_task.py does the same for every task boundary of a full apply (too slow for CI).
"""

from __future__ import annotations

import pytest
from conftest import podman_unready
from crash_support import (
    AREAS,
    BUILD_IMAGE,
    IMAGE,
    STRIKE,
    goals,
    inventory,
    killed,
    kprov_apply,
    kprov_ready,
    manifest,
    recap,
    remove_container,
    start_container,
)

pytestmark = pytest.mark.podman


@pytest.fixture
def containers(request):
    reason = podman_unready(IMAGE, BUILD_IMAGE) or kprov_ready()
    if reason:
        pytest.skip(reason)
    made: list[str] = []

    def make(image: str = IMAGE) -> tuple[str, str]:
        name, address = start_container(image=image)
        made.append(name)
        return name, address

    request.addfinalizer(lambda: [remove_container(n) for n in made])
    return make


def test_a_run_killed_in_each_area_then_rerun_ends_like_a_clean_run(containers, tmp_path):
    clean, clean_address = containers(BUILD_IMAGE)
    first = kprov_apply(inventory(tmp_path / "clean.ini", clean), tmp_path / "state", *goals(clean_address))
    assert first.returncode == 0, first.stdout + first.stderr
    reference = manifest(clean, clean_address)
    assert reference["files"]["/etc/default/distcc"] and reference["distccd"], reference

    ctr, address = containers()
    inv = inventory(tmp_path / "crash.ini", ctr)
    struck = []
    for area in AREAS:
        mark = tmp_path / f"fault-{area}"
        run = kprov_apply(inv, tmp_path / "state", *goals(address), fault=f"{area}:{STRIKE[area]}", mark=mark)
        assert killed(run), f"the run was not killed in {area}: rc={run.returncode}\n{run.stdout}{run.stderr}"
        assert mark.exists(), f"no task of {area} ran: {run.stdout}{run.stderr}"
        struck.append(mark.read_text().strip())
    assert [s.split("\t")[0] for s in struck] == list(AREAS), struck

    final = kprov_apply(inv, tmp_path / "state", *goals(address))
    assert final.returncode == 0, final.stdout + final.stderr
    got = manifest(ctr, address, reference["plan"]["packages"] if reference["plan"] else None)
    assert got == manifest(clean, clean_address, reference["plan"]["packages"] if reference["plan"] else None), (
        f"killed runs in {struck} left another end state"
    )

    again = kprov_apply(inv, tmp_path / "state", *goals(address), "--diff")
    assert again.returncode == 0, again.stdout + again.stderr
    assert recap(again.stdout)["changed"] == 0, again.stdout
