"""provision.facts.ansible: HostFacts from Ansible setup facts (+ the role's probe), and plans from them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from provision.errors import UserError
from provision.facts.ansible import facts_from_ansible, load_ansible_facts_file
from provision.facts.local import gather
from provision.model.facts import HostFacts
from provision.model.goals import Goals
from provision.model.plan import Plan
from provision.fleet.host import plan_from_ansible
from provision.units import GIB, MIB

FIXTURES = Path(__file__).parent / "fixtures" / "ansible"
ROOT = Path(__file__).resolve().parent.parent
ROLE = ROOT / "playbooks" / "roles" / "kbuild_host"
BIN = Path(sys.executable).parent
CONTAINERS_CONF = ROOT / "tests" / "podman" / "containers.conf"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


PROBE = load("debian12-localhost-probe.json")


def unprefixed(flat: dict) -> dict:
    return {k[len("ansible_"):]: v for k, v in flat.items()}


# --------------------------------------------------------------------------- shapes


def test_every_shape_of_the_same_facts_gives_the_same_hostfacts():
    setup = load("debian12-localhost-setup.json")
    tree = load("debian12-localhost-tree.json")
    flat = load("debian12-localhost-flat.json")
    role_view = unprefixed(flat)
    results = [facts_from_ansible(d, PROBE) for d in (setup, tree, flat, role_view, {"ansible_facts": role_view})]
    assert all(r == results[0] for r in results)


def test_this_host_fixture_with_its_probe():
    f = facts_from_ansible(load("debian12-localhost-setup.json"), PROBE)
    assert f.source == "ansible"
    assert (f.hostname, f.arch) == ("vm", "x86_64")
    assert (f.distro.id, f.distro.family, f.distro.codename) == ("debian", "debian", "bookworm")
    assert f.cpu.usable == 2 and f.cpu.physical_cores == 2
    assert f.memory.total_bytes == PROBE["memory"]["total_bytes"]  # exact bytes from the probe, not MiB
    assert f.zram.compressors == ("lzo-rle", "lzo", "lz4") and f.zram.active == "lzo-rle"
    assert f.virtualization == PROBE["virtualization"]  # the probe's verdict beats Ansible's "docker"
    assert f.toolchain["gcc"] == "12.2.0" and f.toolchain["clang"] is None
    assert f.default_ipv4 == "192.0.2.2"
    assert f.disk("build").mount == "/" and f.disk("ccache").path == "/var/cache/ccache"
    assert HostFacts.from_dict(json.loads(json.dumps(f.to_dict()))) == f


def test_without_a_probe_setup_facts_alone_are_used():
    f = facts_from_ansible(load("debian12-localhost-setup.json"))
    assert f.memory.total_bytes == 24105 * MIB
    assert f.memory.available_bytes == 23596 * MIB  # memory_mb.nocache.free
    assert f.cpu.usable == 2 and f.cpu.cgroup_quota is None
    assert f.virtualization == "container:docker"  # what Ansible itself concluded
    assert f.zram.compressors == () and f.zram.source == "unknown"
    assert f.toolchain == {}


def test_fedora_written_from_the_documented_keys():
    f = facts_from_ansible(load("fedora40-setup.json"), build_dir="/home/dev/src/linux")
    assert (f.distro.id, f.distro.family, f.distro.version) == ("fedora", "redhat", "40")
    assert (f.cpu.logical, f.cpu.usable, f.cpu.physical_cores) == (16, 16, 12)
    assert f.cpu.model == "12th Gen Intel(R) Core(TM) i7-1260P"
    assert f.memory.total_bytes == 31822 * MIB and f.memory.swap_total_bytes == 8191 * MIB
    assert f.disk("build").mount == "/home" and f.disk("build").fstype == "btrfs"
    assert f.disk("ccache").mount == "/"  # /var/cache/ccache: longest prefix is /, not /boot
    assert f.disk("home").path == "/home/dev"
    assert f.virtualization == "none"  # virtualization_role host
    assert f.default_ipv4 == "192.0.2.40"


@pytest.mark.parametrize(
    "os_family, distribution, family, did",
    [
        ("Debian", "Ubuntu", "debian", "ubuntu"),
        ("Debian", "Linux Mint", "debian", "linuxmint"),
        ("RedHat", "Rocky", "redhat", "rocky"),
        ("RedHat", "RedHat", "redhat", "rhel"),
        ("Archlinux", "Archlinux", "arch", "arch"),
        ("Suse", "openSUSE Tumbleweed", "suse", "opensuse-tumbleweed"),
        ("Alpine", "Alpine", "alpine", "alpine"),
        ("Gentoo", "Gentoo", "unknown", "gentoo"),
    ],
)
def test_os_family_mapping(os_family, distribution, family, did):
    data = {**unprefixed(load("debian12-localhost-flat.json")), "os_family": os_family, "distribution": distribution}
    d = facts_from_ansible(data).distro
    assert (d.family, d.id) == (family, did)


@pytest.mark.parametrize(
    "vtype, role, expected",
    [("podman", "guest", "container:podman"), ("docker", "guest", "container:docker"), ("lxc", "guest", "container:lxc"),
     ("kvm", "guest", "vm"), ("VMware", "guest", "vm"), ("kvm", "host", "none"), ("NA", "NA", "none")],
)
def test_virtualization_from_setup_facts(vtype, role, expected):
    data = {**unprefixed(load("debian12-localhost-flat.json")), "virtualization_type": vtype, "virtualization_role": role}
    assert facts_from_ansible(data).virtualization == expected


def test_probe_of_a_limited_container_sets_usable_cpus_and_effective_memory():
    data = {**unprefixed(load("debian12-localhost-flat.json")), "processor_vcpus": 32, "processor_nproc": 32}
    probe = json.loads(json.dumps(PROBE))
    probe["cpu"].update(logical=32, affinity=32, cgroup_quota=4.0, usable=4)
    probe["memory"].update(total_bytes=64 * GIB, cgroup_limit_bytes=4 * GIB)
    probe["virtualization"] = "container:podman"
    f = facts_from_ansible(data, probe)
    assert (f.cpu.logical, f.cpu.affinity, f.cpu.usable, f.cpu.cgroup_quota) == (32, 32, 4, 4.0)
    assert f.memory.effective_bytes == 4 * GIB
    assert f.in_container


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "data, message",
    [
        ({}, "missing memtotal_mb, architecture, processor_vcpus, os_family"),
        ({"ansible_facts": {"ansible_memtotal_mb": 100}}, "missing architecture, processor_vcpus, os_family"),
        ([1, 2], "expected an object, got list"),
        ("text", "expected an object, got str"),
    ],
)
def test_wrong_shape_names_what_is_missing(data, message):
    with pytest.raises(UserError) as err:
        facts_from_ansible(data)
    assert message in str(err.value)


def test_wrong_types_are_user_errors():
    data = {**unprefixed(load("debian12-localhost-flat.json")), "memtotal_mb": "lots"}
    with pytest.raises(UserError, match="memtotal_mb is not a number"):
        facts_from_ansible(data)
    data = {**unprefixed(load("debian12-localhost-flat.json")), "mounts": "/"}
    with pytest.raises(UserError, match="mounts is not a list"):
        facts_from_ansible(data)
    with pytest.raises(UserError, match="kbuild_host_probe result"):
        facts_from_ansible(load("debian12-localhost-flat.json"), probe=["not", "a", "dict"])


FLAT = unprefixed(load("debian12-localhost-flat.json"))


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("memtotal_mb", float("inf"), "memtotal_mb is not a number (inf)"),
        ("memtotal_mb", float("nan"), "memtotal_mb is not a number (nan)"),
        ("memtotal_mb", "\u0663\u0663\u0663\u0663", "memtotal_mb is not a number"),
        ("memtotal_mb", [24105], "memtotal_mb is not a number (a list)"),
        ("memtotal_mb", 10**5000, "memory.total_bytes: an integer of"),
        ("memtotal_mb", 0, "memory.total_bytes: 0 is out of range"),
        ("processor_vcpus", -4, "cpu.logical: -4 is out of range"),
        ("processor_vcpus", True, "processor_vcpus is not a number (true)"),
        ("processor_nproc", 1.5, "processor_nproc is not a number (1.5)"),
        ("default_ipv4", "192.0.2.2", "default_ipv4 is not an object"),
        ("default_ipv4", {"address": ["192.0.2.2"]}, "default_ipv4.address is not text"),
        ("default_ipv4", {"address": "192.0.2.2\n"}, "default_ipv4"),
        ("mounts", ["/"], "mounts[0] is not an object"),
        ("hostname", {"name": "x"}, "hostname is not text"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else "",  # pytest cannot print 10**5000
)
def test_setup_facts_of_the_wrong_type_or_range_are_refused_by_name(key, value, message):
    with pytest.raises(UserError) as err:
        facts_from_ansible({**FLAT, key: value}, None)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("zram", "compressors", "lz4", "probe.zram.compressors is not a list ('lz4')"),
        ("zram", "compressors", ["lz4", 4], "probe.zram.compressors[1] is not text"),
        ("zram", "devices_in_use", "/dev/zram0", "probe.zram.devices_in_use is not a list"),
        ("zram", "device_present", "false", "probe.zram.device_present is not true or false"),
        ("cpu", "cgroup_quota", float("inf"), "probe.cpu.cgroup_quota is not a finite number"),
        ("cpu", "cgroup_quota", 10**400, "probe.cpu.cgroup_quota is not a number in range"),
        ("cpu", "affinity", "\u0664", "probe.cpu.affinity is not a number"),
        ("memory", "cgroup_limit_bytes", -1, "memory.cgroup_limit_bytes: -1 is out of range"),
        ("memory", "total_bytes", "lots", "probe.memory.total_bytes is not a number"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else "",
)
def test_probe_values_of_the_wrong_type_or_range_are_refused_by_name(section, key, value, message):
    probe = json.loads(json.dumps(PROBE))
    probe[section][key] = value
    with pytest.raises(UserError) as err:
        facts_from_ansible(FLAT, probe)
    assert message in str(err.value)


def test_text_numbers_of_ascii_digits_are_still_taken():
    f = facts_from_ansible({**FLAT, "memtotal_mb": "24105", "processor_vcpus": "2", "processor_nproc": 2.0}, None)
    assert f.memory.total_bytes == 24105 * MIB and f.cpu.logical == 2


def test_load_file_refuses_what_is_not_a_small_regular_file(tmp_path: Path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(UserError, match=r"^--ansible-facts .*: not a regular file$"):
            load_ansible_facts_file(path)
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UserError, match="nested too deeply"):
        load_ansible_facts_file(nested)


def test_load_file_as_ansible_prints_it(tmp_path: Path):
    text = (FIXTURES / "debian12-localhost-setup.json").read_text()
    printed = tmp_path / "web1.txt"
    printed.write_text("[WARNING]: No inventory was parsed\nlocalhost | SUCCESS => " + text)
    assert load_ansible_facts_file(printed) == facts_from_ansible(json.loads(text))


def test_load_file_with_the_probe_beside_the_facts(tmp_path: Path):
    combined = {**load("debian12-localhost-setup.json"), "probe": PROBE}
    path = tmp_path / "host.json"
    path.write_text(json.dumps(combined))
    assert load_ansible_facts_file(path).zram.compressors == ("lzo-rle", "lzo", "lz4")


def test_load_file_errors_name_the_file(tmp_path: Path):
    with pytest.raises(UserError, match=r"^--ansible-facts .*missing\.json: cannot read it"):
        load_ansible_facts_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(UserError, match=r"bad\.json: not JSON"):
        load_ansible_facts_file(bad)
    bad.write_text(json.dumps({"ansible_facts": {"ansible_hostname": "x"}}))
    with pytest.raises(UserError, match=r"bad\.json: Ansible facts: missing memtotal_mb"):
        load_ansible_facts_file(bad)


# --------------------------------------------------------------------------- plans


def test_plan_from_ansible_takes_goals_as_dict_goals_or_none():
    setup = load("debian12-localhost-setup.json")
    p_none = plan_from_ansible(setup, PROBE, None)
    p_empty = plan_from_ansible(setup, PROBE, {})
    p_goals = plan_from_ansible(setup, PROBE, Goals())
    assert isinstance(p_none, Plan) and p_none == p_empty == p_goals
    assert p_none.host.usable_cpus == 2 and p_none.host.zram_compressors == ("lzo-rle", "lzo", "lz4")
    forced = plan_from_ansible(setup, PROBE, {"jobs": 1, "zram": True, "allow": [], "distcc_hosts": []})
    assert forced.jobs.value == 1 and forced.jobs.overridden
    assert forced.zram.enabled and forced.zram.algorithm in ("lzo-rle", "lzo", "lz4")


def test_plan_from_ansible_rejects_bad_goals():
    with pytest.raises(UserError, match="kbuild_host_goals"):
        plan_from_ansible(load("debian12-localhost-setup.json"), PROBE, {"jobs": "many"})
    with pytest.raises(UserError, match="kbuild_host_goals: expected a mapping"):
        plan_from_ansible(load("debian12-localhost-setup.json"), PROBE, ["jobs"])


def test_plan_from_ansible_uses_the_goals_build_dir():
    p = plan_from_ansible(load("fedora40-setup.json"), None, {"build_dir": "/home/dev/build"})
    assert p.config.build_dir == "/home/dev/build"


# --------------------------------------------------------------------------- this host, live


def ansible_json(*args: str, inventory: str = "localhost,", connection: str = "local", env=None) -> dict:
    """Run the ansible ad-hoc command and return the one host's JSON result."""
    cmd = [str(BIN / "ansible"), "all", "-i", inventory, "-c", connection, *args]
    if connection == "local":  # this very Python, as Ansible's implicit localhost would use
        cmd += ["-e", f"ansible_python_interpreter={sys.executable}"]
    run_env = {
        **os.environ,
        "ANSIBLE_LIBRARY": str(ROLE / "library"),
        "ANSIBLE_MODULE_UTILS": str(ROLE / "module_utils"),
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal",
        **(env or {}),
    }
    out = subprocess.run(cmd, capture_output=True, text=True, env=run_env, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout.split("=>", 1)[1])


@pytest.fixture(scope="module")
def live():
    if not (BIN / "ansible").exists():
        pytest.skip("ansible is not installed in this environment")
    setup = ansible_json("-m", "ansible.builtin.setup")
    probe = ansible_json("-m", "kbuild_host_probe")
    return setup, probe


def test_probe_module_never_changes_anything(live):
    _setup, result = live
    assert result["changed"] is False
    assert set(result["probe"]) >= {"cpu", "memory", "cgroup", "swap", "zram", "virtualization", "toolchain"}


def test_same_host_same_numbers_as_the_local_path(live):
    setup, result = live
    remote = facts_from_ansible(setup, result["probe"])
    local = gather()
    assert remote.cpu.usable == local.cpu.usable
    assert remote.memory.effective_bytes == local.memory.effective_bytes
    assert remote.zram.compressors == local.zram.compressors
    assert remote.distro.family == local.distro.family
    assert remote.virtualization == local.virtualization
    assert remote.toolchain["gcc"] == local.toolchain["gcc"]
    remote_plan = plan_from_ansible(setup, result["probe"], {"build_dir": "/tmp/kprov-same"})
    from provision.facts.catalog import load_catalog
    from provision.planner import plan

    local_plan = plan(gather(build_dir="/tmp/kprov-same"), Goals(build_dir="/tmp/kprov-same"), load_catalog())
    assert remote_plan.jobs.value == local_plan.jobs.value
    assert remote_plan.zram.enabled == local_plan.zram.enabled
    assert remote_plan.zram.algorithm == local_plan.zram.algorithm


def test_probe_module_in_check_mode():
    if not (BIN / "ansible").exists():
        pytest.skip("ansible is not installed in this environment")
    result = ansible_json("-m", "kbuild_host_probe", "-a", "toolchain=false", "--check")
    assert result["changed"] is False and result["probe"]["toolchain"] == {}


# --------------------------------------------------------------------------- in a podman container


def _podman_ready(image: str) -> str | None:
    if not shutil.which("podman"):
        return "podman is not installed"
    env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
    if subprocess.run(["podman", "image", "exists", image], env=env).returncode != 0:
        return f"image {image} is missing (tests/images/build.sh)"
    return None


@pytest.mark.podman
def test_probe_inside_a_limited_podman_container():
    image = "localhost/kprov-debian:bookworm"
    reason = _podman_ready(image)
    if reason:
        pytest.skip(reason)
    env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
    name = f"kprov-facts-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["podman", "run", "-d", "--name", name, "--cpus", "1", "--memory", "512m", image, "sleep", "600"],
        env=env, check=True, capture_output=True,
    )
    try:
        setup = ansible_json("-m", "ansible.builtin.setup", inventory=f"{name},",
                             connection="containers.podman.podman", env={"CONTAINERS_CONF": str(CONTAINERS_CONF)})
        result = ansible_json("-m", "kbuild_host_probe", inventory=f"{name},",
                              connection="containers.podman.podman", env={"CONTAINERS_CONF": str(CONTAINERS_CONF)})
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], env=env, capture_output=True)
    probe = result["probe"]
    assert result["changed"] is False
    assert probe["virtualization"] == "container:podman"
    assert probe["cgroup"]["cpu_quota"] == 1.0 and probe["cpu"]["usable"] == 1
    assert probe["memory"]["cgroup_limit_bytes"] == 512 * MIB
    assert probe["zram"]["device_present"] is False  # containers have no /dev/zram0
    f = facts_from_ansible(setup, probe)
    assert f.cpu.usable == 1 and f.memory.effective_bytes == 512 * MIB and f.in_container
    assert f.distro.family == "debian"


def test_probe_module_documents_its_options_and_result():
    import ast

    import yaml

    source = (ROLE / "library" / "kbuild_host_probe.py").read_text()
    docs = {
        t.id: yaml.safe_load(node.value.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name) and t.id in ("DOCUMENTATION", "EXAMPLES", "RETURN")
    }
    assert docs["DOCUMENTATION"]["module"] == "kbuild_host_probe"
    assert set(docs["DOCUMENTATION"]["options"]) == {"root", "toolchain", "ccache_group"}
    assert docs["DOCUMENTATION"]["attributes"]["check_mode"]["support"] == "full"
    assert set(docs["RETURN"]["probe"]["contains"]) == set(PROBE) | {"toolchain", "toolchain_facts", "ccache_group_members"}
    assert docs["EXAMPLES"][0]["register"] == "__kbuild_host_probe"
