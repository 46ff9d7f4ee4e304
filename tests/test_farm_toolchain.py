"""Farm members that can compile for each other, and hosts that can share ccache hits.

The members' toolchain facts are fixtures (tests/fixtures/farm/toolchains.json: what each member
publishes as ``kbuild_host_farm_toolchain``); the probe itself runs for real on this host.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from provision.facts.catalog import load_catalog
from provision.facts.local import load_facts_file, sysprobe, toolchain_facts
from provision.fleet.farm import Farm
from provision.fleet.members import FarmMember
from provision.fleet.members import (
    farm_toolchain,
    member_toolchain,
    partitions_text,
    toolchain_partitions,
    version_key,
)
from provision.model.facts import ToolchainFacts
from provision.model.goals import Goals
from provision.planner import plan

FIXTURES = Path(__file__).parent / "fixtures"
TOOLCHAINS = json.loads((FIXTURES / "farm" / "toolchains.json").read_text())
ADDRESSES = {name: f"10.0.0.{i}" for i, name in enumerate(sorted(k for k in TOOLCHAINS if not k.startswith("_")), 10)}
CLIENT_DRIVER = "x86_64-linux-gnu-gcc-12"


def member(name: str, kind: str | None = None, as_name: str | None = None) -> FarmMember:
    """A farm member called ``as_name`` (default: ``name``) with the toolchain of fixture ``name``."""
    host = as_name or name
    return FarmMember(
        name=host,
        address=ADDRESSES[name] if as_name is None else _extra_address(host),
        toolchain=member_toolchain(TOOLCHAINS[name], host),
        compiler=kind,
    )


_EXTRA: dict[str, str] = {}


def _extra_address(host: str) -> str:
    return _EXTRA.setdefault(host, f"10.0.1.{len(_EXTRA) + 1}")


def jobs(*names: str) -> dict[str, int]:
    return {n: 4 for n in names}


def client_goals(farm: Farm, client: str, servers: list[str], compiler: str = "auto"):
    return farm.goals_for(client, {"compiler": compiler}, jobs(*servers))


# --------------------------------------------------------------------------- who compiles for whom


def test_mixed_gcc_revisions_leave_the_other_revision_out_with_both_version_lines():
    servers = [member("deb12-current", as_name="twin"), member("deb12-older-gcc")]
    farm = Farm(servers, [member("deb12-current")])
    goals = client_goals(farm, "deb12-current", ["twin", "deb12-older-gcc"])
    assert goals.distcc_hosts == ("twin/4",)
    assert len(goals.distcc_excluded) == 1
    why = goals.distcc_excluded[0]
    assert why.startswith("deb12-older-gcc: ")
    assert "'x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14) 12.2.0'" in why
    assert "'x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0'" in why
    # the server whose clients all match installs nothing
    assert farm.goals_for("twin", {}).distcc_server_packages == ()


def test_an_arm64_server_is_left_out_for_x86_64_clients():
    farm = Farm([member("deb12-arm64")], [member("deb12-current")])
    goals = client_goals(farm, "deb12-current", ["deb12-arm64"])
    assert goals.distcc_hosts == ()
    assert goals.distcc_excluded == (
        "deb12-arm64: its gcc compiles for aarch64-linux-gnu and it has no x86_64-linux-gnu-gcc-12 "
        "(distcc would get aarch64-linux-gnu objects back)",
    )
    # and it installs nothing: Debian's gcc-12 there compiles for aarch64
    assert farm.goals_for("deb12-arm64", {}).distcc_server_packages == ()


def test_a_server_of_the_same_release_without_the_compiler_installs_the_distros_package():
    farm = Farm([member("deb12-bare")], [member("deb12-current")])
    goals = client_goals(farm, "deb12-current", ["deb12-bare"])
    assert goals.distcc_hosts == ("deb12-bare/4",)
    assert goals.distcc_excluded == ()
    server = farm.goals_for("deb12-bare", {})
    assert server.distcc_server_packages == ("gcc-12",)
    assert farm.verdict("deb12-current", "deb12-bare").reason.startswith("installs gcc-12 there (debian 12 packages")


def test_a_server_of_another_release_is_left_out_not_given_a_package():
    farm = Farm([member("deb13-gcc14")], [member("deb12-current")])
    goals = client_goals(farm, "deb12-current", ["deb13-gcc14"])
    assert goals.distcc_hosts == ()
    assert goals.distcc_excluded == (
        "deb13-gcc14: it has no x86_64-linux-gnu-gcc-12 and runs debian 13, not debian 12, so no package of it matches",
    )
    assert farm.goals_for("deb13-gcc14", {}).distcc_server_packages == ()


def test_a_clang_client_with_gcc_servers_gets_clang_installed_where_the_release_packages_it():
    servers = [member("deb12-current"), member("deb13-gcc14")]
    farm = Farm(servers, [member("deb12-clang", kind="clang")])
    goals = client_goals(farm, "deb12-clang", ["deb12-current", "deb13-gcc14"], compiler="clang")
    assert goals.distcc_hosts == ("deb12-current/4",)
    assert goals.distcc_excluded == (
        "deb13-gcc14: it has no clang-14 and runs debian 13, not debian 12, so no package of it matches",
    )
    # the server learns the client's compiler from the member (its goals), not from the client's call
    assert farm.goals_for("deb12-current", {}).distcc_server_packages == ("clang-14",)


def test_the_same_clang_client_asking_for_gcc_uses_the_gcc_servers_as_they_are():
    farm = Farm([member("deb12-current")], [member("deb12-clang", kind="gcc")])
    goals = client_goals(farm, "deb12-clang", ["deb12-current"], compiler="gcc")
    assert goals.distcc_hosts == ("deb12-current/4",)
    assert farm.goals_for("deb12-current", {}).distcc_server_packages == ()


def test_a_farm_where_no_server_matches_says_so_and_the_client_builds_locally():
    farm = Farm([member("deb12-arm64"), member("deb13-gcc14")], [member("deb12-current")])
    fg = client_goals(farm, "deb12-current", ["deb12-arm64", "deb13-gcc14"])
    assert fg.distcc_hosts == ()
    assert [e.split(":")[0] for e in fg.distcc_excluded] == ["deb12-arm64", "deb13-gcc14"]
    facts = _facts_with("deb12-current")
    p = plan(facts, fg.merged_goals(Goals(target="defconfig")), load_catalog())
    assert not p.distcc.client and not p.distcc.enabled
    assert p.distcc.reason == "off: no server of the farm compiles what this host compiles (2 excluded)"
    assert p.distcc.excluded == fg.distcc_excluded
    assert any(w.startswith("distcc: no server of the farm compiles what this host compiles") for w in p.warnings)
    assert "DISTCC_HOSTS" not in p.env


def test_members_without_toolchain_facts_are_kept_as_before():
    plain = FarmMember(name="old", address="10.0.2.1")
    farm = Farm([plain], [member("deb12-current")])
    assert client_goals(farm, "deb12-current", ["old"]).distcc_hosts == ("old/4",)


def test_clients_with_one_toolchain_share_one_hosts_tuple():
    farm = Farm(
        [member("deb12-current", as_name="s1"), member("deb12-older-gcc")],
        [member("deb12-current", as_name="c1"), member("deb12-current", as_name="c2")],
    )
    a = client_goals(farm, "c1", ["s1", "deb12-older-gcc"]).distcc_hosts
    b = client_goals(farm, "c2", ["s1", "deb12-older-gcc"]).distcc_hosts
    assert a == ("s1/4",) and a is b


def test_the_farms_goals_reach_the_role_as_plain_data():
    farm = Farm([member("deb12-bare"), member("deb12-arm64")], [member("deb12-current")])
    client = client_goals(farm, "deb12-current", ["deb12-bare", "deb12-arm64"]).merged_dict({})
    assert client["distcc_hosts"] == ["deb12-bare/4"]
    assert client["distcc_excluded"][0].startswith("deb12-arm64: ")
    assert farm.goals_for("deb12-bare", {}).merged_dict({})["distcc_server_packages"] == ["gcc-12"]
    # and back through Goals (the role's kbuild_host_goals)
    assert Goals.from_dict(client).distcc_excluded == tuple(client["distcc_excluded"])


def test_a_published_toolchain_of_the_wrong_shape_is_one_line():
    from provision.errors import UserError

    with pytest.raises(UserError, match=r"^farm member h: kbuild_host_farm_toolchain: expected an object, got list$"):
        member_toolchain(["gcc"], "h")
    with pytest.raises(UserError, match=r"kbuild_host_farm_toolchain.toolchain.compilers: expected a list"):
        member_toolchain({"toolchain": {"compilers": "gcc"}}, "h")


def test_version_key_drops_only_a_gcc_drivers_own_name():
    assert version_key("gcc (Debian 12.2.0-14) 12.2.0") == "(Debian 12.2.0-14) 12.2.0"
    assert version_key("x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14) 12.2.0") == "(Debian 12.2.0-14) 12.2.0"
    assert version_key("Debian clang version 14.0.6") == "Debian clang version 14.0.6"


# --------------------------------------------------------------------------- the plans


def _facts_with(name: str):
    facts = load_facts_file(FIXTURES / "debian12-2c-24g.json")
    return dataclasses.replace(facts, toolchain_facts=member_toolchain(TOOLCHAINS[name], name).facts)


def test_a_distcc_client_names_the_versioned_triplet_driver_on_the_make_line_and_ccache_hands_it_on():
    facts = _facts_with("deb12-current")
    p = plan(facts, Goals(target="defconfig", distcc_hosts=("build2/8",)), load_catalog())
    assert p.distcc.compiler == CLIENT_DRIVER
    assert p.config.make_vars["CC"] == f"ccache {CLIENT_DRIVER}"
    assert p.env["CCACHE_PREFIX"] == "distcc"
    assert f"CC='ccache {CLIENT_DRIVER}'" in p.config.make_command
    assert p.distcc.reasons["compiler"].startswith(
        f"{CLIENT_DRIVER}: the versioned triplet name of this host's gcc (gcc (Debian 12.2.0-14+deb12u1) 12.2.0)"
    )
    without_ccache = plan(facts, Goals(target="defconfig", ccache=False, distcc_hosts=("build2/8",)), load_catalog())
    assert without_ccache.config.make_vars["CC"] == f"distcc {CLIENT_DRIVER}"


def test_a_client_without_toolchain_facts_keeps_the_plain_name_and_is_told_why():
    facts = load_facts_file(FIXTURES / "debian12-2c-24g.json")
    p = plan(facts, Goals(target="defconfig", distcc_hosts=("build2/8",)), load_catalog())
    assert p.config.make_vars["CC"] == "ccache gcc"
    assert any("the servers get the plain name 'gcc'" in w for w in p.warnings)


def test_a_non_distcc_plan_keeps_its_compiler_name():
    p = plan(_facts_with("deb12-current"), Goals(target="defconfig"), load_catalog())
    assert p.config.make_vars["CC"] == "ccache gcc"
    assert p.distcc.compiler == ""


def test_a_server_plan_installs_the_farms_packages_and_names_its_links():
    farm = Farm([member("deb12-bare")], [member("deb12-current")])
    fg = farm.goals_for("deb12-bare", {})
    facts = _facts_with("deb12-bare")
    p = plan(facts, fg.merged_goals(Goals(target="defconfig")), load_catalog())
    assert p.distcc.server and p.distcc.server_packages == ("gcc-12",)
    assert "gcc-12" in p.packages
    assert p.distcc.reasons["server_packages"].startswith("gcc-12: the compiler(s) its clients use")
    assert "the gcc-12 driver to be linked by update-distcc-symlinks" in p.distcc.reasons["links"]
    assert p.to_role_vars()["kbuild_host_packages"].count("gcc-12") == 1


def test_a_server_reports_which_of_its_compilers_distccd_may_run():
    facts = _facts_with("deb12-current")
    p = plan(facts, Goals(target="defconfig", distcc_server=True, allow=("10.0.0.0/24",)), load_catalog())
    assert p.distcc.reasons["links"] == (
        f"distccd runs only compilers linked in /usr/lib/distcc: {CLIENT_DRIVER} linked in /usr/lib/distcc"
    )
    unlinked = dataclasses.replace(facts.toolchain_facts, distcc_links=("gcc",))
    p = plan(dataclasses.replace(facts, toolchain_facts=unlinked),
             Goals(target="defconfig", distcc_server=True, allow=("10.0.0.0/24",)), load_catalog())
    assert f"{CLIENT_DRIVER} to be linked by update-distcc-symlinks" in p.distcc.reasons["links"]


def test_farm_goals_naming_a_package_that_is_not_one_are_refused():
    from provision.errors import UserError

    facts = _facts_with("deb12-bare")
    goals = Goals(target="defconfig", distcc_server=True, allow=("10.0.0.0/24",), distcc_server_packages=("gcc;rm",))
    with pytest.raises(UserError, match=r"goals.distcc_server_packages: 'gcc;rm' is not a package name"):
        plan(facts, goals, load_catalog())


# --------------------------------------------------------------------------- ccache partitions


def test_one_toolchain_is_one_partition():
    parts = toolchain_partitions({"a": _tc("deb12-current"), "b": _tc("deb12-current")})
    assert len(parts) == 1 and parts[0].hosts == ("a", "b")
    assert partitions_text(parts).startswith("one toolchain on every host (gcc (Debian 12.2.0-14+deb12u1) 12.2.0)")


def test_mixed_revisions_and_pahole_on_one_builder_partition_the_cache_and_say_by_what():
    members = {
        "a": _tc("deb12-current"),
        "b": _tc("deb12-current"),
        "old": _tc("deb12-older-gcc"),
        "nopahole": _tc("deb12-no-pahole"),
        "unknown": None,
    }
    parts = toolchain_partitions(members)
    assert [p.hosts for p in parts] == [("a", "b"), ("old",), ("nopahole",)]
    assert parts[0].differs == ()
    assert parts[1].differs == (
        "compiler 'gcc (Debian 12.2.0-14) 12.2.0' vs 'gcc (Debian 12.2.0-14+deb12u1) 12.2.0'",
    )
    assert parts[2].differs == ("pahole absent here, present there",)
    text = partitions_text(parts)
    assert text.startswith("partitioned by toolchain into 3: a, b (gcc (Debian 12.2.0-14+deb12u1) 12.2.0); old (compiler")
    assert "nopahole (pahole absent here, present there)" in text


def test_partitions_take_the_arm64_target_and_the_planned_kind():
    members = {"x": _tc("deb12-current"), "arm": _tc("deb12-arm64"), "clang": _tc("deb12-clang")}
    parts = toolchain_partitions(members, kinds={"clang": "clang"})
    by_host = {h: p for p in parts for h in p.hosts}
    assert by_host["arm"].arch == "aarch64-linux-gnu"
    assert any(d.startswith("target 'aarch64-linux-gnu' vs 'x86_64-linux-gnu'") for d in by_host["arm"].differs)
    assert by_host["clang"].compiler == "clang Debian clang version 14.0.6"
    # the same laptop building with gcc shares the x86_64 gcc hosts' partition
    parts = toolchain_partitions(members, kinds={"clang": "gcc"})
    assert ("x", "clang") in [p.hosts for p in parts]


def test_partitions_accept_host_facts_and_farm_members():
    facts = _facts_with("deb12-current")
    parts = toolchain_partitions({"h": facts, "m": member("deb12-current", as_name="m")})
    assert [p.hosts for p in parts] == [("h", "m")]
    assert farm_toolchain(facts)["release"] == "debian 12"
    assert member_toolchain(farm_toolchain(facts), "h").facts == facts.toolchain_facts


def _tc(name: str):
    return member_toolchain(TOOLCHAINS[name], name)


# --------------------------------------------------------------------------- the probe, for real


def test_the_probe_parses_fake_tool_output_and_lists_only_versioned_drivers():
    outputs = {
        ("gcc", "--version"): "gcc (Debian 12.2.0-14) 12.2.0\nCopyright\n",
        ("gcc", "-dumpmachine"): "x86_64-linux-gnu\n",
        ("x86_64-linux-gnu-gcc-12", "--version"): "x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14) 12.2.0\n",
        ("x86_64-linux-gnu-gcc-13", "--version"): "x86_64-linux-gnu-gcc-13 (Debian 13.1.0-6) 13.1.0\n",
        ("as", "--version"): "GNU assembler (GNU Binutils for Debian) 2.40\n",
        ("ld", "--version"): "GNU ld (GNU Binutils for Debian) 2.40\n",
    }
    names = {
        "/usr/bin": ["gcc", "x86_64-linux-gnu-gcc-12", "x86_64-linux-gnu-gcc-13", "x86_64-linux-gnu-gcc-ar-12",
                     "gcc-nm-12", "clang-14x"],
        "/usr/lib/distcc": ["gcc", "x86_64-linux-gnu-gcc-12"],
    }
    data = sysprobe().toolchain_facts(outputs.get, names.get)
    tc = ToolchainFacts.from_dict(data, "probe")
    gcc = tc.compiler("gcc")
    assert (gcc.version_text, gcc.version, gcc.triplet, gcc.driver) == (
        "gcc (Debian 12.2.0-14) 12.2.0", "12.2.0", "x86_64-linux-gnu", "x86_64-linux-gnu-gcc-12",
    )
    assert tc.compiler("clang") is None
    assert tc.drivers == {
        "x86_64-linux-gnu-gcc-12": "x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14) 12.2.0",
        "x86_64-linux-gnu-gcc-13": "x86_64-linux-gnu-gcc-13 (Debian 13.1.0-6) 13.1.0",
    }
    assert tc.pahole is None and tc.lld is None
    assert tc.distcc_links == ("gcc", "x86_64-linux-gnu-gcc-12")


def test_the_probe_refuses_a_triplet_that_is_not_one():
    outputs = {("gcc", "--version"): "gcc 12.2.0\n", ("gcc", "-dumpmachine"): "x86_64 linux; rm -rf\n"}
    data = sysprobe().toolchain_facts(outputs.get, {"/usr/bin": ["x86_64-linux-gnu-gcc-12"]}.get)
    assert data["compilers"][0]["triplet"] == "" and data["compilers"][0]["driver"] is None


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_the_local_probe_reads_this_hosts_gcc_as_kbuild_records_it():
    tc = toolchain_facts()
    gcc = tc.compiler("gcc")
    first = subprocess.run(["gcc", "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    machine = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True, check=True).stdout.strip()
    assert gcc.version_text == first
    assert gcc.triplet == machine
    major = gcc.version.split(".")[0]
    assert gcc.driver == f"{machine}-gcc-{major}"
    assert shutil.which(gcc.driver)
    assert version_key(tc.drivers[gcc.driver]) == version_key(first)
    if shutil.which("pahole"):
        out = subprocess.run(["pahole", "--version"], capture_output=True, text=True).stdout.strip()
        assert tc.pahole == out
    else:
        assert tc.pahole is None


def test_the_group_database_parser_lists_members_and_primary_members():
    group = "root:x:0:\nkbuild:x:998:alice,bob\nother:x:5:carol\n"
    passwd = "root:x:0:0::/root:/bin/sh\ndave:x:1001:998::/home/dave:/bin/sh\nalice:x:1002:998::/:/bin/sh\n"
    assert sysprobe().parse_group_members(group, passwd, "kbuild") == ["alice", "bob", "dave"]
    assert sysprobe().parse_group_members(group, passwd, "missing") is None
    assert sysprobe().parse_group_members("kbuild:x:998:\n", "", "kbuild") == []


def test_a_shared_cache_names_the_versioned_driver_so_every_sharing_host_records_the_same_line():
    facts = _facts_with("deb12-current")
    p = plan(facts, Goals(target="defconfig", ccache_shared=True), load_catalog())
    assert p.ccache.compiler == CLIENT_DRIVER
    assert p.config.make_vars["CC"] == f"ccache {CLIENT_DRIVER}"
    assert p.ccache.reasons["compiler"].startswith(f"CC names {CLIENT_DRIVER}: every unit's autoconf.h records")
    unknown = plan(load_facts_file(FIXTURES / "debian12-2c-24g.json"), Goals(target="defconfig", ccache_shared=True),
                   load_catalog())
    assert unknown.config.make_vars["CC"] == "ccache gcc" and unknown.ccache.compiler == ""


def test_ansible_facts_carry_the_probes_toolchain_facts_and_group_members():
    from provision.errors import UserError
    from provision.facts.ansible import facts_from_ansible

    setup = json.loads((FIXTURES / "ansible" / "debian12-localhost-setup.json").read_text())
    probe = json.loads((FIXTURES / "ansible" / "debian12-localhost-probe.json").read_text())
    probe = probe.get("probe", probe)
    published = TOOLCHAINS["deb12-current"]["toolchain"]
    facts = facts_from_ansible(setup, {**probe, "toolchain_facts": published, "ccache_group_members": ["alice"]})
    assert facts.toolchain_facts == ToolchainFacts.from_dict(published)
    assert facts.ccache_group_members == ("alice",)
    without = facts_from_ansible(setup, probe)
    assert without.toolchain_facts is None and without.ccache_group_members is None
    with pytest.raises(UserError, match=r"probe.toolchain_facts.compilers\[0\].version_text: expected a string"):
        facts_from_ansible(setup, {**probe, "toolchain_facts": {"compilers": [{"kind": "gcc", "version_text": 12}]}})
