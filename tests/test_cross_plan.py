"""Cross builds (``--arch``): the switch and its rule, the cross toolchain each distro family
packages, the make line and ``kprov env`` with gcc and with clang, and arm64 defconfig costed from
its own measurement (docs/calibration.md §17)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from provision import calibration as cal
from provision.cli.app import Kprov
from provision.errors import UserError
from provision.facts.catalog import load_catalog
from provision.model.facts import HostFacts
from provision.model.goals import Goals
from provision.planner import plan
from provision.rules.names import check_kernel_arch, kernel_arch
from provision.rules.system import check_buildenv
from provision.units import MIB

FIXTURES = Path(__file__).parent / "fixtures"
CATALOG = load_catalog()


def host(name: str) -> HostFacts:
    return HostFacts.from_dict(json.loads((FIXTURES / f"{name}.json").read_text()))


def p(name: str, **goals):
    return plan(host(name), Goals(**goals), CATALOG)


def run_app(capsys, *args: str) -> tuple[int, str, str]:
    _, rc = Kprov.run(["kprov", *args], exit=False)
    out, err = capsys.readouterr()
    return rc, out, err


# --------------------------------------------------------------------------- the switch and its rule


@pytest.mark.parametrize(("given", "kernel"), [("arm64", "arm64"), ("aarch64", "arm64"), ("x86_64", "x86"),
                                               ("riscv64", "riscv"), ("ppc64le", "powerpc"), ("s390x", "s390"),
                                               ("armhf", "arm"), ("loongarch64", "loongarch"), ("mips", "mips")])
def test_arch_names_map_to_the_kernel_arch(given, kernel):
    assert kernel_arch(given, "--arch") == kernel


@pytest.mark.parametrize("bad", ["bogus", "ARM64", "arm64;reboot", "", "x" * 40, None, 64])
def test_an_unknown_arch_is_one_line_naming_it_and_the_known_ones(bad):
    with pytest.raises(UserError) as err:
        kernel_arch(bad, "--arch")
    text = str(err.value)
    assert "\n" not in text and text.startswith("--arch ") and "arm64, csky" in text and "riscv" in text


def test_goals_hold_the_kernel_name_and_another_name_is_refused_with_it():
    with pytest.raises(UserError, match="the kernel calls this architecture arm64"):
        check_kernel_arch("aarch64", "kbuild_host_goals.arch")
    with pytest.raises(UserError, match="calls this architecture arm64"):
        p("debian12-2c-24g", arch="aarch64")  # an inventory's kbuild_host_goals: checked by the planner
    assert check_kernel_arch("loongarch", "--arch") == "loongarch"


def test_the_switch_takes_an_alias_and_plans_the_kernel_arch(capsys):
    rc, out, err = run_app(capsys, "plan", "--facts", str(FIXTURES / "debian12-2c-24g.json"), "--arch", "aarch64", "--json")
    assert rc == 0, err
    assert json.loads(out)["config"]["make_vars"]["ARCH"] == "arm64"


@pytest.mark.parametrize("command", ["plan", "env", "apply", "build"])
def test_a_bad_arch_exits_2_with_one_line_and_no_traceback(command, tmp_path):
    args = [sys.executable, "-m", "provision.cli", command, "--arch", "sparc32x"]
    if command in ("plan", "env"):
        args += ["--facts", str(FIXTURES / "debian12-2c-24g.json")]
    if command == "apply":
        args += ["--check"]
    if command == "build":
        args += ["--tree", str(tmp_path), "--as-root"]
    run = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode != 0
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--arch 'sparc32x' is not a kernel architecture" in lines[0], run.stderr
    assert "Traceback" not in run.stderr + run.stdout


# --------------------------------------------------------------------------- packages per family


@pytest.mark.parametrize(("fixture", "wanted"), [
    ("debian12-2c-24g", ("gcc-aarch64-linux-gnu", "binutils-aarch64-linux-gnu")),
    ("fedora-40", ("gcc-aarch64-linux-gnu", "binutils-aarch64-linux-gnu")),
    ("arch", ("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-binutils")),
])
def test_a_gcc_cross_build_installs_the_familys_cross_toolchain(fixture, wanted):
    result = p(fixture, arch="arm64", target="defconfig", compiler="gcc")
    assert set(wanted) <= set(result.packages)
    native = p(fixture, target="defconfig", compiler="gcc")
    assert not set(wanted) & set(native.packages)
    assert not any("packages no GNU cross compiler" in w for w in result.warnings)


def test_debian_toolchains_for_the_other_arches_and_their_prefixes():
    for arch, prefix, gcc in (("arm", "arm-linux-gnueabihf-", "gcc-arm-linux-gnueabihf"),
                              ("riscv", "riscv64-linux-gnu-", "gcc-riscv64-linux-gnu"),
                              ("powerpc", "powerpc64le-linux-gnu-", "gcc-powerpc64le-linux-gnu"),
                              ("s390", "s390x-linux-gnu-", "gcc-s390x-linux-gnu"),
                              ("mips", "mips64-linux-gnuabi64-", "gcc-mips64-linux-gnuabi64")):
        result = p("debian12-2c-24g", arch=arch, target="defconfig", compiler="gcc")
        assert gcc in result.packages and result.config.make_vars["CROSS_COMPILE"] == prefix, arch


@pytest.mark.parametrize(("fixture", "family"), [("opensuse-tumbleweed", "suse"), ("alpine-3.20", "alpine")])
def test_a_family_without_a_known_cross_compiler_says_so_in_one_line(fixture, family):
    result = p(fixture, arch="arm64", target="defconfig", compiler="gcc")
    said = [w for w in result.warnings if "packages no GNU cross compiler" in w]
    assert len(said) == 1 and f"the {family} distro family" in said[0] and "ARCH=arm64" in said[0], result.warnings
    assert not any("aarch64" in name for name in result.packages)  # no invented name


def test_debian_has_no_loongarch_cross_gcc_in_bookworm_and_says_so():
    result = p("debian12-2c-24g", arch="loongarch", target="defconfig", compiler="gcc")
    assert any("no GNU cross compiler for ARCH=loongarch" in w for w in result.warnings)
    assert not any("loongarch" in name for name in result.packages)


def test_clang_cross_build_needs_no_cross_gcc_and_says_so():
    result = p("debian12-2c-24g", arch="arm64", target="defconfig", compiler="clang")
    v = result.config.make_vars
    assert v["ARCH"] == "arm64" and v["LLVM"] == "1" and "CROSS_COMPILE" not in v
    assert not any("aarch64" in name for name in result.packages) and "clang" in result.packages
    reason = result.config.reasons["arch"]
    assert "LLVM=1" in reason and "no CROSS_COMPILE and no cross gcc packages" in reason


def test_a_native_arch_is_not_a_cross_build():
    result = p("debian12-2c-24g", arch="x86", target="defconfig", compiler="gcc")
    assert "ARCH" not in result.config.make_vars and "CROSS_COMPILE" not in result.config.make_vars
    assert "arch" not in result.config.reasons


# --------------------------------------------------------------------------- make line and env


def _vars_of(command: str) -> dict[str, str]:
    return dict(w.split("=", 1) for w in shlex.split(command) if "=" in w and not w.startswith("-"))


def test_gcc_cross_make_line_and_env(capsys):
    rc, out, err = run_app(capsys, "plan", "--facts", str(FIXTURES / "debian12-2c-24g.json"), "--arch", "arm64",
                           "--compiler", "gcc", "--json")
    assert rc == 0, err
    planned = json.loads(out)
    line = _vars_of(planned["config"]["make_command"])
    assert line["ARCH"] == "arm64" and line["CROSS_COMPILE"] == "aarch64-linux-gnu-"
    assert line["CC"] in ("aarch64-linux-gnu-gcc", "ccache aarch64-linux-gnu-gcc")
    rc, out, err = run_app(capsys, "env", "--facts", str(FIXTURES / "debian12-2c-24g.json"), "--arch", "arm64",
                           "--compiler", "gcc")
    assert rc == 0, err
    exports = dict(shlex.split(ln.removeprefix("export "))[0].split("=", 1) for ln in out.splitlines()
                   if ln.startswith("export "))
    assert exports["ARCH"] == "arm64" and exports["CROSS_COMPILE"] == "aarch64-linux-gnu-"
    assert _vars_of(exports["KPROV_MAKE_ARGS"]) == {k: v for k, v in line.items() if k != "O"}
    assert "CC" not in exports  # CC only on the make line
    assert check_buildenv(planned["env"]) == planned["env"]  # the role accepts what kprov env exports


def test_clang_cross_env_exports_arch_and_llvm_only(capsys):
    rc, out, err = run_app(capsys, "env", "--facts", str(FIXTURES / "debian12-2c-24g.json"), "--arch", "riscv",
                           "--compiler", "clang", "--no-ccache")
    assert rc == 0, err
    assert "export ARCH=riscv" in out and "export LLVM=1" in out and "CROSS_COMPILE" not in out


def test_every_users_profile_gets_the_cross_variables_only_inside_kprov_make_args():
    """kbuild reads ARCH, CROSS_COMPILE and LLVM from the environment: in /etc/profile.d they would
    turn every user's native build into a cross build, so the host-wide environment carries them
    only in KPROV_MAKE_ARGS, which a kernel build passes on purpose."""
    for compiler, wanted in (("gcc", {"ARCH": "arm64", "CROSS_COMPILE": "aarch64-linux-gnu-"}),
                             ("clang", {"ARCH": "arm64", "LLVM": "1"})):
        result = p("debian12-2c-24g", target="defconfig", arch="arm64", compiler=compiler)
        assert wanted.items() <= result.env.items()  # kprov env, for one shell
        assert not {"ARCH", "CROSS_COMPILE", "LLVM"} & set(result.host_env), result.host_env
        assert wanted.items() <= _vars_of(result.host_env["KPROV_MAKE_ARGS"]).items()
        assert result.to_role_vars()["kbuild_host_buildenv"] == result.host_env


def test_native_env_exports_no_arch():
    result = p("debian12-2c-24g", target="defconfig")
    assert not {"ARCH", "CROSS_COMPILE", "LLVM"} & set(result.env)


def test_buildenv_rule_refuses_a_bad_arch_or_prefix():
    with pytest.raises(UserError):
        check_buildenv({"ARCH": "arm64; rm -rf /"})
    with pytest.raises(UserError):
        check_buildenv({"CROSS_COMPILE": "$(reboot)-"})
    with pytest.raises(UserError):
        check_buildenv({"LLVM": "0"})
    assert check_buildenv({"ARCH": "arm64", "CROSS_COMPILE": "aarch64-linux-gnu-", "LLVM": "1"})["ARCH"] == "arm64"


# --------------------------------------------------------------------------- arm64 costing


def test_arm64_defconfig_is_costed_as_arm64_not_as_x86():
    row = cal.ARCH_COST[("defconfig", "arm64")]
    arm = p("debian12-2c-24g", arch="arm64", target="defconfig", compiler="gcc")
    x86 = p("debian12-2c-24g", target="defconfig", compiler="gcc")
    # the per-job figure is the measured p99 (with the DWARF it was measured with) plus as
    assert arm.jobs.per_job_bytes == int((row["per_job_mib"]["p99"] * 1.0 + cal.AS_PER_JOB_MIB) * MIB) or abs(
        arm.jobs.per_job_bytes - (row["per_job_mib"]["p99"] + cal.AS_PER_JOB_MIB) * MIB) < 2 * MIB
    assert "arm64-default" in arm.jobs.reason and "arm64-default" not in x86.jobs.reason
    assert arm.estimate.cpu_seconds >= x86.estimate.cpu_seconds
    measured_cpu = row["cpu_seconds"] if row["cpu_seconds"] is not None else row["cpu_seconds_measured"]
    assert arm.estimate.cpu_seconds >= measured_cpu
    assert arm.config.debug_info == "dwarf"


def test_a_native_arm64_host_is_costed_as_arm64_and_told_the_time_scales_with_its_cpu():
    pi = p("rpi4-4g", target="defconfig")
    assert "ARCH" not in pi.config.make_vars  # native: no cross build
    assert "arm64-default" in pi.jobs.reason
    assert "scales with its speed" in pi.estimate.reason and "kprov calibrate" in pi.estimate.reason


def test_the_arm64_row_is_one_entry_and_feeds_every_class_table():
    row = cal.ARCH_COST[("defconfig", "arm64")]
    klass = row["class"]
    assert cal.arch_class("defconfig", "arm64") == klass and cal.arch_class("defconfig", "x86") is None
    assert klass in cal.CLASSES and row["modules"] == 879
    assert round(cal.per_job_mib(klass, "gcc", "dwarf")) == row["per_job_mib"]["p99"] + cal.AS_PER_JOB_MIB
    p = row["per_job_mib"]
    assert p["p50"] <= p["p90"] <= p["p99"] <= p["max"] and row["units"] > 0
    assert cal.build_cpu_seconds(klass, "gcc", "dwarf") >= (row["cpu_seconds"] or row["cpu_seconds_measured"])
    if row["link_peak_mib"] is not None:
        assert round(cal.link_peak_mib(klass, "dwarf", row["variant"])) == row["link_peak_mib"]
    for table in (cal.PREPARE_SECONDS, cal.LINK_SECONDS, cal.LTO_FULL_LINK_MIB, cal.CCACHE_FOOTPRINT_MIB):
        assert table[klass] > 0


def test_the_plan_says_what_of_arm64_defconfig_is_measured_and_what_is_an_estimate():
    row = cal.ARCH_COST[("defconfig", "arm64")]
    cost = p("debian12-2c-24g", arch="arm64", target="defconfig").config.reasons["cost"]
    assert "arm64-default" in cost and "§17" in cost and f"{row['per_job_mib']['p99']}" in cost
    assert ("a sample of" in cost) == (not row["complete"]) and ("over all" in cost) == row["complete"]
    assert "estimates until measured" in cost and "make prepare" in cost  # x86's figures, called estimates
    assert ("CPU-minutes of the jobs measured" in cost) == (row["cpu_seconds"] is None)
    assert ("vmlinux link x86 defconfig's" in cost) == (row["link_peak_mib"] is None)
    assert "cost" not in p("debian12-2c-24g", target="defconfig").config.reasons  # x86: the table's own class
