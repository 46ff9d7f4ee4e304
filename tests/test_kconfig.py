"""provision.tree.kconfig: the .config a planned target really produces, evaluated for real on Debian's
linux-source in a scratch O= (a few seconds per target), and the pure parts on small texts.

The tree is unpacked once into a fixed cache directory (``KPROV_LINUX_SOURCE_CACHE``, default
/var/tmp/kprov-linux) and reused by test_calibrate.py and tests/bench_jobs.py; tests never write
into it (kbuild writes only into O=).
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from provision.facts.catalog import load_catalog
from provision.facts.tree import tree_facts
from provision.model.facts import KconfigRequest
from provision.model.goals import Goals
from provision import planner
from provision.planner.config import config_commands
from provision.planner.config import config_request
from provision.tree import kconfig

CACHE = Path(os.environ.get("KPROV_LINUX_SOURCE_CACHE", "/var/tmp/kprov-linux"))
#: What evaluating a config and building a few objects needs besides the tree.
BUILD_TOOLS = ("make", "gcc", "flex", "bison", "bc", "perl", "xz")


def linux_source() -> Path:
    """Debian's linux-source unpacked (apt-get install linux-source first when it is missing)."""
    missing = [tool for tool in BUILD_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"kernel build tools missing: {' '.join(missing)} (tests/system-packages.txt lists them)")
    tarballs = sorted(glob.glob("/usr/src/linux-source-*.tar.xz"))
    if not tarballs and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "linux-source"],
            check=False, capture_output=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        tarballs = sorted(glob.glob("/usr/src/linux-source-*.tar.xz"))
    if not tarballs:
        pytest.skip("linux-source is not installed (apt-get install linux-source)")
    tarball = Path(tarballs[-1])
    tree = CACHE / tarball.name.removesuffix(".tar.xz")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ((CACHE / ".done").is_file() and (tree / "Makefile").is_file()):
            (CACHE / ".done").unlink(missing_ok=True)
            partial = CACHE / f".unpacking-{os.getpid()}"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            subprocess.run(["tar", "-xf", str(tarball), "-C", str(partial)], check=True)
            shutil.rmtree(tree, ignore_errors=True)
            (partial / tree.name).rename(tree)
            partial.rmdir()
            (CACHE / ".done").write_text("unpacked\n")
    return tree


@pytest.fixture(scope="module")
def tree() -> Path:
    return linux_source()


# --------------------------------------------------------------------------- pure parts

CONFIG = """#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.1.192 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="gcc (Debian 12.2.0-14+deb12u1) 12.2.0"
CONFIG_DEBUG_INFO=y
# CONFIG_DEBUG_INFO_NONE is not set
CONFIG_DEBUG_INFO_DWARF5=y
CONFIG_DEBUG_INFO_REDUCED=y
CONFIG_KASAN=y
CONFIG_GCOV_KERNEL=y
CONFIG_X86_KERNEL_IBT=y
CONFIG_LTO_NONE=y
CONFIG_EXT4_FS=m
CONFIG_E1000E=m
"""


def test_describe_reads_what_the_plan_depends_on():
    k = kconfig.describe(CONFIG, "olddefconfig", script_args=("--enable LTO_CLANG_THIN", "--enable DEBUG_INFO_NONE"))
    assert (k.arch, k.kernel_version) == ("x86", "6.1.192")
    assert k.debug_info == "dwarf" and set(k.debug_flags) == {"DWARF5", "REDUCED"}
    assert k.sanitizers == ("KASAN", "GCOV_KERNEL") and k.objtool_vmlinux
    assert k.modules == 2 and k.compiler.startswith("gcc (Debian 12.2.0")
    # LTO asked and not set: refused; DEBUG_INFO_NONE is judged by the debug-info kind instead
    assert k.refused == ("LTO_CLANG_THIN",)


def test_the_config_hash_ignores_comments_and_order():
    reordered = "\n".join(reversed(CONFIG.splitlines())) + "\n# a comment\n"
    assert kconfig.config_hash(CONFIG) == kconfig.config_hash(reordered)
    assert kconfig.config_hash(CONFIG) != kconfig.config_hash(CONFIG.replace("CONFIG_KASAN=y\n", ""))


def test_a_failing_make_is_one_line_naming_the_command(tmp_path: Path):
    with pytest.raises(kconfig.KconfigError) as err:
        kconfig.run(["make", "-C", str(tmp_path), "nosuchtarget"], kconfig.make_env())
    assert str(err.value).startswith("make -C ") and "failed" in str(err.value) and "\n" not in str(err.value)


def test_the_callers_make_environment_does_not_leak_in(monkeypatch):
    monkeypatch.setenv("ARCH", "arm64")
    monkeypatch.setenv("KBUILD_OUTPUT", "/elsewhere")
    monkeypatch.setenv("MAKEFLAGS", "-j64")
    env = kconfig.make_env()
    assert not {"ARCH", "KBUILD_OUTPUT", "MAKEFLAGS"} & set(env) and env["LC_ALL"] == "C"


# --------------------------------------------------------------------------- real evaluations


def _facts(tree: Path):
    from provision.facts.local import gather

    return gather(tree=str(tree))


def test_defconfig_evaluated_for_real(tree: Path, tmp_path: Path):
    facts = _facts(tree)
    goals = Goals(target="defconfig")
    request = config_request(facts, goals)
    assert request == KconfigRequest(target="defconfig")
    said: list[str] = []
    k = kconfig.evaluate(facts.tree, request, lambda base: config_commands(facts, goals, base), said.append, tmp_path)
    assert k.source == "evaluated" and k.target == "defconfig" and k.arch == "x86"
    assert k.kernel_version.startswith("6.1.") and k.debug_info == "none" and k.lto == "none"
    assert k.sanitizers == () and not k.objtool_vmlinux and 0 < k.modules < 100
    assert k.base is not None and k.script_args == () and 0 < k.seconds < 300
    assert said and said[0].startswith("evaluating Kconfig: make -s -C ")
    # the same request gives the same config, so a profile keyed by its hash is found again
    again = kconfig.evaluate(facts.tree, request, lambda base: (), None, tmp_path)
    assert again.config_hash == k.config_hash
    plan = planner.plan(facts, goals, load_catalog(), kconfig.tree_evaluation(facts, goals, root=tmp_path))
    assert plan.config.source == "evaluated" and "evaluated in a scratch O=" in plan.config.reasons["kconfig"]


def test_allmodconfig_with_dwarf_asked_for_evaluated_for_real(tree: Path, tmp_path: Path):
    facts = _facts(tree)
    goals = Goals(target="allmodconfig", debug_info="dwarf")
    k = kconfig.evaluate(
        facts.tree, config_request(facts, goals), lambda base: config_commands(facts, goals, base), None, tmp_path
    )
    # what the target gives: no debug info, the sanitizers, objtool over vmlinux.o, thousands of modules
    assert k.base.debug_info == "none" and k.base.modules > 5000
    assert {"KASAN", "UBSAN_SANITIZE_ALL", "KCOV_INSTRUMENT_ALL", "GCOV_KERNEL"} <= set(k.base.sanitizers)
    assert k.base.objtool_vmlinux
    # what the plan's scripts/config lines make of it: full DWARF, not REDUCED/SPLIT/COMPRESSED
    assert "--enable DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT" in k.script_args
    assert k.debug_info == "dwarf" and not {"REDUCED", "SPLIT", "COMPRESSED"} & set(k.debug_flags)
    assert k.refused == ()
    plan = planner.plan(facts, goals, load_catalog(), kconfig.tree_evaluation(facts, goals, root=tmp_path))
    assert plan.config.debug_info == "dwarf" and plan.jobs.per_job_bytes > 400 << 20
    assert "allmodconfig gives debug info none" in plan.config.reasons["debug_info"]


def test_a_tree_configured_in_place_is_read_not_evaluated(tmp_path: Path):
    """kbuild refuses O= for such a tree: the plan builds in it and reads its .config."""
    fake = tmp_path / "linux"
    (fake / "scripts").mkdir(parents=True)
    (fake / "Kconfig").write_text("")
    (fake / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n")
    (fake / ".config").write_text(CONFIG)
    facts = tree_facts(fake)
    assert not facts.clean
    from provision.facts.local import gather

    host = gather(tree=str(fake))
    request = config_request(host, Goals())
    assert request.target == "olddefconfig" and not request.evaluable and "in place" in request.why_not
    ev = kconfig.tree_evaluation(host, Goals(), root=tmp_path / "scratch")
    assert ev.kconfig.source == "tree" and ev.kconfig.debug_info == "dwarf"
    plan = planner.plan(host, Goals(), load_catalog(), ev)
    assert plan.config.build_dir is None and "configured in place" in plan.config.reasons["build_dir"]
    assert " O=" not in plan.config.make_command
