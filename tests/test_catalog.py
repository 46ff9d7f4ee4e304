"""The role's package lists load as a PackageCatalog, and Debian's names exist in apt's index."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from provision.errors import EnvironmentProblem
from provision.facts.catalog import FAMILY_FILES, load_catalog, load_family
from provision.model.schema import FAMILIES
from provision.resources import role_dir


def test_every_family_has_a_vars_file_that_loads():
    catalog = load_catalog()
    assert set(catalog.families) == set(FAMILIES) == set(FAMILY_FILES)
    for family, pkgs in catalog.families.items():
        assert pkgs.build, family
        assert pkgs.ccache and pkgs.distcc and pkgs.clang, family
        assert pkgs.zram_tool in ("zram-tools", "zram-generator", "zram-init"), family
        assert pkgs.zram, family
        assert all(name == name.strip() and " " not in name for name in pkgs.build), family


def test_catalog_is_cached():
    assert load_catalog() is load_catalog()


def test_unknown_family_is_absent():
    assert load_catalog().for_family("unknown") is None


def test_broken_vars_file_is_an_environment_problem(tmp_path):
    bad = tmp_path / "Debian.yml"
    bad.write_text("__kbuild_host_build_packages: [bc, [nested]]\n")
    with pytest.raises(EnvironmentProblem, match="must be a list of package names"):
        load_family(bad)
    bad.write_text("{unclosed: [")
    with pytest.raises(EnvironmentProblem, match="not valid YAML"):
        load_family(bad)


@pytest.mark.skipif(shutil.which("apt-cache") is None, reason="apt-cache is not installed on this host")
def test_debian_names_are_known_to_apt():
    pkgs = load_family(role_dir() / "vars" / "Debian.yml")
    names = sorted(set(pkgs.build + pkgs.zram + pkgs.ccache + pkgs.distcc + pkgs.clang))
    # One apt-cache call for every name (one call per name takes a second each here).
    out = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", *names], capture_output=True, text=True
    ).stdout
    known = {line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Package:")}
    unknown = sorted(set(names) - known)
    assert not unknown, f"apt-cache does not know {unknown}"
