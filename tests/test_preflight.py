"""tests/preflight.py: the one list the installer and the preflight read, and what it reports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import preflight
import pytest

HERE = Path(__file__).resolve().parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(HERE / "preflight.py"), *args],
                          capture_output=True, text=True, check=False)


def test_the_suite_list_parses_and_names_what_podman_only_recommends():
    reqs = {r.package: r.checks for r in preflight.load_list(preflight.DEFAULT_LIST)}
    # --no-install-recommends skips these: the list must name them itself.
    assert "/usr/libexec/podman/catatonit" in reqs["catatonit"]
    assert "debian-archive-keyring" in reqs and "uidmap" in reqs and "slirp4netns" in reqs
    assert {"podman", "runc", "debootstrap", "ccache", "distcc"} <= reqs.keys()


@pytest.mark.parametrize("text, message", [
    ("podman\n", "names nothing to check"),
    ("podman bin/podman\n", "neither a command"),
    ("# only a comment\n", "names no package"),
])
def test_a_broken_list_is_refused_with_its_line(text, message):
    with pytest.raises(preflight.ListError, match=message):
        preflight.parse_list(text)


def test_a_missing_command_file_and_module_are_each_named_with_their_package(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(
        "coreutils  true  /bin/sh  py:json      # present\n"
        "ghost-pkg  kprov-no-such-command  /nonexistent/kprov/file  py:kprov_no_such_module\n"
    )
    proc = run("--list", str(listing), "check")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"preflight: kprov-no-such-command is missing (Debian package ghost-pkg, {listing} line 2)",
        f"preflight: /nonexistent/kprov/file is missing (Debian package ghost-pkg, {listing} line 2)",
        f"preflight: py:kprov_no_such_module is missing (Debian package ghost-pkg, {listing} line 2)",
    ]


def test_packages_lists_what_dpkg_lacks_or_whose_files_are_gone(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("coreutils true\nkprov-no-such-package true\ndpkg /nonexistent/kprov/file\n")
    proc = run("--list", str(listing), "packages")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["kprov-no-such-package", "dpkg"]


def test_a_missing_venv_is_reported_before_anything_runs_from_it(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("coreutils true\n")
    proc = run("--list", str(listing), "check", "--venv", str(tmp_path / "novenv"))
    assert proc.returncode == 1
    assert f"preflight: {tmp_path}/novenv/bin/kprov is missing" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_this_machine_passes_the_system_checks():
    """tests/run.sh installed the list before pytest started: every item must be there now."""
    assert preflight.missing_items(preflight.load_list(preflight.DEFAULT_LIST)) == []


def test_strict_mode_turns_a_missing_tool_skip_into_a_failure(tmp_path):
    (tmp_path / "conftest.py").write_text((HERE / "conftest.py").read_text())
    (tmp_path / "test_x.py").write_text(
        "import pytest\n"
        "def test_tool():\n    pytest.skip('distcc is not installed')\n"
        "def test_machine():\n    pytest.skip('this host has no /sys/block/zram0')\n"
    )

    def pytest_in(env_strict: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KPROV_TEST_STRICT": env_strict}
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                              capture_output=True, text=True, check=False, cwd=tmp_path, env=env)

    relaxed = pytest_in("0")
    assert relaxed.returncode == 0 and "2 skipped" in relaxed.stdout, relaxed.stdout
    strict = pytest_in("1")
    assert strict.returncode == 1, strict.stdout
    assert "1 failed, 1 skipped" in strict.stdout
    assert "skipped under KPROV_TEST_STRICT=1" in strict.stdout and "distcc is not installed" in strict.stdout
