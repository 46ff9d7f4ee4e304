"""The shared compile cache's rules (provision/planner/shared_cache.py through the planner, provision/fleet/):
backend and size from the store host's resources, writers and readers, client settings, where
hits cannot cross hosts, the role variables, and a fleet's groups. Facts fixtures, no I/O
except the fleet's secret files in a temporary directory."""

from __future__ import annotations

import dataclasses
import json
import stat
from pathlib import Path

import pytest

from provision.errors import UserError
from provision.facts.catalog import load_catalog
from provision.fleet.hostvars import (
    cache_goals_from_hostvars,
    plans_secret_files,
    secret_files,
)
from provision.fleet.plan import plan_fleet
from provision.fleet.table import fleet_json, render_fleet
from provision.model.facts import HostFacts, KconfigFacts, TreeEvaluation
from provision.model.goals import CacheRemoteGoal, CacheUser, Goals
from provision.planner import plan
from provision.planner import shared_cache as cache_rules
from provision.role import backend
from provision.role.checks import check_role_vars
from provision.role.secrets import ensure_secret_files
from provision.rules.store import check_store_var

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SECRET_FILE = "/etc/kprov/ccache-store/secrets/x"


def facts(name: str) -> HostFacts:
    return HostFacts.from_dict(json.loads((FIXTURES / f"{name}.json").read_text()))


def server(**kw) -> Goals:
    return Goals(ccache_server=True, listen=kw.pop("listen", "127.0.0.1"), **kw)


def remote_goal(write: bool = False, url: str = "redis://10.0.0.5:6380") -> Goals:
    return Goals(ccache_remote=CacheRemoteGoal(url=url, user="laptop", secret_file="/home/u/.kprov/secret", write=write))


# --------------------------------------------------------------------------- backend and size


def test_a_small_ram_store_gets_http_and_says_why():
    p = plan(facts("rpi4-4g"), server(target="allmodconfig"), load_catalog())
    s = p.ccache.store
    assert s.backend == "http" and s.port == 8380
    why = s.reasons["backend"]
    assert "Redis needs" in why and "more than" in why and "free on" in why
    # http: the size is the footprint, no Redis overhead; objects bounded, never 0
    assert s.max_size_bytes == int(cache_rules.cal.ccache_footprint_mib("allmod", "none") * 2**20 * 2 * 1.25)
    assert 0 < s.max_object_bytes <= s.max_size_bytes


def test_a_big_ram_store_gets_redis_with_its_overhead_in_maxmemory():
    p = plan(facts("workstation-64c-256g"), server(target="allmodconfig"), load_catalog())
    s = p.ccache.store
    assert s.backend == "redis" and s.port == 6380
    data = int(cache_rules.cal.ccache_footprint_mib("allmod", "none") * 2**20 * 2 * 1.25)
    assert s.max_size_bytes == int(data * (1 + cache_rules.REDIS_OVERHEAD))
    assert "within" in s.reasons["backend"]


def test_the_store_grows_with_builds_to_keep_and_toolchains():
    base = plan(facts("workstation-64c-256g"), server(target="allmodconfig"), load_catalog()).ccache.store
    more = plan(
        facts("workstation-64c-256g"), server(target="allmodconfig", builds_to_keep=4, ccache_toolchains=3), load_catalog()
    ).ccache.store
    assert more.max_size_bytes == pytest.approx(base.max_size_bytes * 6, rel=0.01)
    assert "3 toolchain(s)" in more.reasons["max_size"]


def test_an_asked_backend_is_kept_and_an_impossible_one_is_one_line():
    p = plan(facts("rpi4-4g"), server(target="allmodconfig", ccache_backend="redis"), load_catalog())
    assert p.ccache.store.backend == "redis"
    assert "as asked" in p.ccache.store.reasons["backend"]
    tiny_disk = facts("rpi4-4g")
    disks = tuple(dataclasses.replace(d, free_bytes=2**30) for d in tiny_disk.disks)
    tiny_disk = dataclasses.replace(tiny_disk, disks=disks)
    with pytest.raises(UserError) as err:
        plan(tiny_disk, server(target="allmodconfig", ccache_backend="http", ccache_size_bytes=2**29), load_catalog())
    assert "\n" not in str(err.value) and "--ccache-backend http" in str(err.value)


def test_nothing_fits_is_one_line_naming_both():
    f = facts("rpi4-4g")
    f = dataclasses.replace(f, disks=tuple(dataclasses.replace(d, free_bytes=3 * 2**30) for d in f.disks))
    with pytest.raises(UserError) as err:
        plan(f, server(target="allmodconfig", ccache_size_bytes=2**29), load_catalog())
    assert "Redis needs" in str(err.value) and "free on" in str(err.value)


def test_store_listen_and_allow():
    p = plan(facts("laptop-8c-16g"), server(), load_catalog())
    assert p.ccache.store.allow == ("127.0.0.0/8",)  # loopback listen: loopback allow
    p = plan(facts("laptop-8c-16g"), server(listen="10.0.0.5", allow=("10.0.0.0/24",), ccache_port=7000), load_catalog())
    assert (p.ccache.store.listen, p.ccache.store.port, p.ccache.store.allow) == ("10.0.0.5", 7000, ("10.0.0.0/24",))
    with pytest.raises(UserError, match="--allow"):
        plan(facts("laptop-8c-16g"), server(listen="10.0.0.5"), load_catalog())
    with pytest.raises(UserError):
        plan(facts("laptop-8c-16g"), server(listen="10.0.0.5", allow=("0.0.0.0/0",)), load_catalog())


# --------------------------------------------------------------------------- who writes


def test_the_store_host_writes_to_its_own_store_and_clients_read_unless_writers():
    users = (CacheUser("laptop", False, "/s/laptop"), CacheUser("ci", True, "/s/ci"))
    p = plan(facts("workstation-64c-256g"), server(ccache_users=users), load_catalog())
    by_name = {u.name: u for u in p.ccache.store.users}
    own = cache_rules.own_user_name(facts("workstation-64c-256g").hostname)
    assert by_name[own].write and by_name["ci"].write and not by_name["laptop"].write
    assert by_name[own].secret_file == f"{cache_rules.LOCAL_SECRETS_DIR}/{own}"
    r = p.ccache.remote
    assert r.write and r.user == own and r.url == "redis://127.0.0.1:6380"


def test_a_reader_is_read_only_with_bounded_timeouts_and_a_stated_worst_case():
    p = plan(facts("laptop-8c-16g"), remote_goal(), load_catalog())
    r = p.ccache.remote
    assert not r.write and not r.only
    assert r.connect_timeout_ms == 100 and r.operation_timeout_ms == 1000
    assert "1100 ms per unit" in r.reasons["timeouts"] and "reads only" in r.reasons["write"]
    assert p.ccache.store is None
    w = plan(facts("laptop-8c-16g"), remote_goal(write=True), load_catalog()).ccache.remote
    assert w.write and "uploads" in w.reasons["write"]


# --------------------------------------------------------------------------- client settings


def test_a_client_makes_hits_cross_hosts_and_says_where_they_cannot():
    p = plan(facts("laptop-8c-16g"), remote_goal(), load_catalog())
    c = p.ccache
    assert "locale" in c.sloppiness and "time_macros" in c.sloppiness
    assert c.hash_dir is False and c.base_dir not in (None, "/")
    assert c.compiler_check == "mtime" and "content" in c.reasons["compiler_check"]
    assert any("autoconf.h" in line for line in c.sharing)
    assert p.env["CCACHE_CONFIGPATH"] == cache_rules.REMOTE_CONF
    assert p.env["KCFLAGS"] == f"-fdebug-prefix-map={c.base_dir}/="


def test_the_store_packages_are_in_the_plans_package_list():
    """One package rule: the planner lists what the store needs, the role installs the list."""
    redis = plan(facts("workstation-64c-256g"), server(ccache_backend="redis"), load_catalog())
    assert redis.ccache.store.backend == "redis" and "redis-server" in redis.packages
    assert "nginx" not in redis.packages
    http = plan(facts("rpi4-4g"), server(), load_catalog())  # systemd: the trim is a timer
    assert http.ccache.store.backend == "http" and "nginx" in http.packages and "cron" not in http.packages
    bare = dataclasses.replace(facts("rpi4-4g"), service_manager="sleep")  # a container: cron trims
    assert {"nginx", "cron"} <= set(plan(bare, server(), load_catalog()).packages)
    assert not {"nginx", "redis-server", "cron"} & set(plan(facts("rpi4-4g"), Goals(), load_catalog()).packages)


def test_base_dir_is_a_common_parent_other_than_the_root():
    """The host-wide base_dir is where the users' trees are (/home), never the planned tree's
    parent; a tree right under / has no parent to share, so its own base_dir is the tree, never /."""
    from provision.model.facts import TreeFacts

    f = dataclasses.replace(facts("laptop-8c-16g"), tree=TreeFacts(path="/linux", kernel_version="6.1.0"))
    p = plan(f, dataclasses.replace(remote_goal(), build_dir="/srv/kbuild/out"), load_catalog())
    c = p.ccache
    assert c.base_dir == "/home" and c.tree_base_dir == "/linux"
    assert p.env["CCACHE_BASEDIR"] == "/linux" and p.env["KCFLAGS"] == "-fdebug-prefix-map=/linux/="
    assert p.host_env["KCFLAGS"] == "-fdebug-prefix-map=/home/=" and "CCACHE_BASEDIR" not in p.host_env
    assert cache_rules.common_parent("/linux", None) is None
    assert cache_rules.common_parent("/linux", "/srv/k/out/") == "/srv/k"


def test_without_a_store_nothing_of_it_is_planned():
    p = plan(facts("laptop-8c-16g"), Goals(), load_catalog())
    assert p.ccache.store is None and p.ccache.remote is None
    assert not any("autoconf.h" in line for line in p.ccache.sharing)  # nothing about other hosts
    assert "CCACHE_CONFIGPATH" not in p.env
    rv = p.to_role_vars()
    assert rv["kbuild_host_ccache_store"] == {} and rv["kbuild_host_ccache_remote"] == {}


def _with_config(f: HostFacts, config: dict[str, str], compiler: str) -> TreeEvaluation:
    k = KconfigFacts(target="defconfig", arch="x86", kernel_version="6.1.0", debug_info="none",
                     config={"CC_IS_CLANG" if compiler == "clang" else "CC_IS_GCC": "y", **config})
    return TreeEvaluation(kconfig=k)


@pytest.mark.parametrize("option", ["RANDSTRUCT_FULL", "GCC_PLUGIN_RANDSTRUCT"])
def test_randstruct_seed_is_hashed(option):
    f = facts("laptop-8c-16g")
    goals = dataclasses.replace(remote_goal(), build_dir="/srv/kbuild/out")
    p = plan(f, goals, load_catalog(), _with_config(f, {option: "y"}, "gcc"))
    if p.config.kconfig is None:
        pytest.skip("this fixture's plan does not read an evaluated config")
    assert p.ccache.extra_files == ("/srv/kbuild/out/scripts/basic/randstruct.seed",)
    assert option in p.ccache.reasons["extra_files"]
    assert any("seed" in line for line in p.ccache.sharing)


def test_no_randstruct_no_extra_file():
    f = facts("laptop-8c-16g")
    p = plan(f, remote_goal(), load_catalog(), _with_config(f, {"RANDSTRUCT_NONE": "y"}, "gcc"))
    assert p.ccache.extra_files == ()


# --------------------------------------------------------------------------- role variables and secrets


def test_role_vars_follow_the_contract_and_carry_no_secret():
    users = (CacheUser("laptop", False, "/s/laptop"),)
    p = plan(facts("workstation-64c-256g"), server(ccache_users=users), load_catalog())
    rv = p.to_role_vars()
    store, remote = rv["kbuild_host_ccache_store"], rv["kbuild_host_ccache_remote"]
    assert set(store) == {"backend", "listen", "port", "allow", "max_size_bytes", "max_object_bytes", "dir", "users"}
    assert set(remote) == {"url", "user", "secret_file", "write", "only", "connect_timeout_ms", "operation_timeout_ms"}
    assert "@" not in remote["url"]
    assert check_store_var(store)["users"][1] == {"name": "laptop", "write": False, "secret_file": "/s/laptop"}
    check_role_vars(rv)  # the validator the role calls accepts what the planner gives
    assert rv["kbuild_host_ccache_compiler_check"] == "mtime"
    assert isinstance(rv["kbuild_host_ccache_extra_files"], list)


@pytest.mark.parametrize(
    "bad",
    [
        {"url": "redis://u:p@1.2.3.4:6380"},
        {"url": "redis://10.0.0.5:6380|read-only"},
        {"user": "a b"},
        {"secret_file": "relative/path"},
        {"connect_timeout_ms": 0},
        {"extra": 1},
    ],
)
def test_the_validator_refuses_a_bad_remote_variable(bad):
    p = plan(facts("laptop-8c-16g"), remote_goal(), load_catalog())
    rv = p.to_role_vars()
    rv["kbuild_host_ccache_remote"] = {**rv["kbuild_host_ccache_remote"], **bad}
    with pytest.raises(UserError) as err:
        check_role_vars(rv)
    assert "\n" not in str(err.value) and "kbuild_host_ccache_remote" in str(err.value)
    assert "u:p" not in str(err.value)


@pytest.mark.parametrize(
    "bad", [{"max_object_bytes": 0}, {"allow": ["0.0.0.0/0"]}, {"listen": "0.0.0.0"}, {"backend": "memcached"},
            {"users": []}, {"dir": "/etc"}]
)
def test_the_validator_refuses_a_bad_store_variable(bad):
    p = plan(facts("workstation-64c-256g"), server(), load_catalog())
    rv = p.to_role_vars()
    rv["kbuild_host_ccache_store"] = {**rv["kbuild_host_ccache_store"], **bad}
    with pytest.raises(UserError):
        check_role_vars(rv)


# --------------------------------------------------------------------------- a fleet


GROUPS = {
    "all": ["store1", "ci1", "laptop1", "far1"],
    "ccache_store": ["store1"],
    "ccache_writers": ["ci1"],
}
ADDRESSES = {"store1": "10.89.7.5", "ci1": "10.89.7.21", "laptop1": "10.89.7.22", "far1": None}


def _fleet_facts() -> dict[str, HostFacts]:
    out = {}
    for name, address in ADDRESSES.items():
        f = facts("workstation-64c-256g" if name == "store1" else "laptop-8c-16g")
        out[name] = dataclasses.replace(f, hostname=name, default_ipv4=address)
    return out


def test_a_fleet_has_a_store_writers_readers_and_excluded_hosts_with_secrets(tmp_path):
    secrets = tmp_path / "kprov-secrets" / "ccache"
    plans = plan_fleet(_fleet_facts(), GROUPS, Goals(), load_catalog(), cache_secrets_dir=str(secrets))
    ensure_secret_files(plans_secret_files(plans))  # what kprov plan -i does after planning
    store = plans["store1"].ccache.store
    assert store is not None and store.listen == "10.89.7.5"
    assert set(store.allow) == {"10.89.7.21/32", "10.89.7.22/32"}
    assert {u.name: u.write for u in store.users} == {"store1": True, "ci1": True, "laptop1": False}
    assert plans["ci1"].ccache.remote.write and plans["ci1"].ccache.fleet_role == "writer"
    assert not plans["laptop1"].ccache.remote.write and plans["laptop1"].ccache.fleet_role == "reader"
    assert plans["ci1"].ccache.remote.url == f"{store.backend}://10.89.7.5:{store.port}" + (
        "/cache/" if store.backend == "http" else ""
    )
    assert plans["far1"].ccache.remote is None and plans["far1"].ccache.fleet_role.startswith("excluded")
    for name in ("store1", "ci1", "laptop1"):
        path = secrets / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    assert not (secrets / "far1").exists()
    before = {n: (secrets / n).read_text() for n in ("store1", "ci1", "laptop1")}
    again = plan_fleet(_fleet_facts(), GROUPS, Goals(), load_catalog(), cache_secrets_dir=str(secrets))
    ensure_secret_files(plans_secret_files(again))
    assert {n: (secrets / n).read_text() for n in before} == before  # never overwritten
    text = render_fleet(again, GROUPS)
    assert "shared compile cache" in text and "excluded far1" in text and "writer ci1" in text
    for secret in before.values():
        assert secret.strip() not in text
        assert secret.strip() not in json.dumps(fleet_json(again))


def test_a_fleet_with_two_stores_is_one_line(tmp_path):
    groups = {**GROUPS, "ccache_store": ["store1", "ci1"]}
    with pytest.raises(UserError) as err:
        plan_fleet(_fleet_facts(), groups, Goals(), load_catalog(), cache_secrets_dir=str(tmp_path))
    assert "exactly one store" in str(err.value)


def test_the_role_path_and_plan_i_give_the_client_the_same_goals(tmp_path):
    """The role's filter hands hostvars to cache_goals_from_hostvars, with the store's own plan in them."""
    hv = {
        n: {"inventory_hostname": n, "ansible_facts": {"hostname": n, "default_ipv4": {"address": a}} if a else {}}
        for n, a in ADDRESSES.items()
    }
    hv["store1"]["kbuild_host_ccache_store"] = {
        "backend": "http", "listen": "10.89.7.5", "port": 8380, "allow": ["10.89.7.0/24"],
        "max_size_bytes": 2**30, "max_object_bytes": 2**26, "dir": "/var/lib/kprov/ccache-store",
        "users": [{"name": "store1", "write": True, "secret_file": str(tmp_path / "store1")}],
    }
    goals = cache_goals_from_hostvars("laptop1", hv, GROUPS, {}, str(tmp_path))
    assert goals["ccache_remote"]["url"] == "http://10.89.7.5:8380/cache/"
    assert goals["ccache_remote"]["write"] is False
    assert goals["ccache_fleet_role"] == "reader"
    # planning names the client's secret file; the role's controller-side filter makes it
    assert not (tmp_path / "laptop1").exists()
    assert secret_files(goals) == ((str(tmp_path / "laptop1"), "laptop1"),)
    assert backend.cache_goals("laptop1", hv, GROUPS, {}, str(tmp_path)) == goals
    assert (tmp_path / "laptop1").exists()
    Goals.from_dict(goals, "goals")  # what the role hands the planner is valid Goals


def test_the_roles_filter_plans_the_store_then_its_clients_at_its_published_endpoint(tmp_path):
    """kprov_cache_goals, as tasks/plan.yml calls it: the store first (its goals and secrets), then
    each other host at the backend and port the store published (kbuild_host_ccache_endpoint)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "kbuild_host_filters", Path(__file__).resolve().parent.parent / "playbooks" / "roles" / "kbuild_host"
        / "filter_plugins" / "kprov.py")
    filters = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(filters)
    hv = {
        n: {"inventory_hostname": n, "ansible_facts": {"hostname": n, "default_ipv4": {"address": a}} if a else {}}
        for n, a in ADDRESSES.items()
    }
    secrets = tmp_path / "kprov-secrets" / "ccache"
    store = filters.kprov_cache_goals("store1", hv, GROUPS, {"ccache_backend": "http"}, str(secrets))
    assert store["ccache_server"] is True and store["ccache_listen"] == "10.89.7.5"
    assert store["ccache_allow"] == ["10.89.7.21/32", "10.89.7.22/32"]  # far1 has no address: excluded
    assert {u["name"]: u["write"] for u in store["ccache_users"]} == {"store1": True, "ci1": True, "laptop1": False}
    assert sorted(p.name for p in secrets.iterdir()) == ["ci1", "laptop1", "store1"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in secrets.iterdir())
    Goals.from_dict(store, "goals")

    ci = filters.kprov_cache_goals("ci1", hv, GROUPS, {}, str(secrets), "ccache_store", "ccache_writers", ["http", 8380])
    assert ci["ccache_remote"]["url"] == "http://10.89.7.5:8380/cache/" and ci["ccache_remote"]["write"] is True
    far = filters.kprov_cache_goals("far1", hv, GROUPS, {}, str(secrets), "ccache_store", "ccache_writers", ["http", 8380])
    assert far["ccache_fleet_role"].startswith("excluded") and "ccache_remote" not in far
    with pytest.raises(Exception, match="exactly one store"):
        filters.kprov_cache_goals("ci1", hv, {**GROUPS, "ccache_store": ["store1", "ci1"]}, {}, str(secrets))


def test_a_store_whose_host_name_is_not_its_inventory_name_uses_only_the_fleets_credentials(tmp_path):
    """Inventories name hosts by address or FQDN: the store's own credential is its inventory name,
    never a second one from its host name (whose secret file nobody made)."""
    fs = _fleet_facts()
    fs["store1"] = dataclasses.replace(fs["store1"], hostname="box-17")
    plans = plan_fleet(fs, GROUPS, Goals(), load_catalog(), cache_secrets_dir=str(tmp_path))
    c = plans["store1"].ccache
    assert [u.name for u in c.store.users] == ["store1", "ci1", "laptop1"]
    assert c.remote.user == "store1" and c.remote.write
    files = plans_secret_files(plans)
    assert files == tuple((u.secret_file, u.name) for u in c.store.users)
    assert not any(Path(path).exists() for path, _ in files)  # planning writes nothing
    ensure_secret_files(files)
    assert all(Path(u.secret_file).exists() for u in c.store.users)


def test_a_fleet_of_several_toolchains_is_told_its_cache_is_partitioned_and_the_store_grows(tmp_path):
    fs = _fleet_facts()
    fs["laptop1"] = dataclasses.replace(facts("rpi4-4g"), hostname="laptop1", default_ipv4="10.89.7.22")
    plans = plan_fleet(fs, GROUPS, Goals(), load_catalog(), cache_secrets_dir=str(tmp_path / "s"))
    line = next(n for n in plans["laptop1"].ccache.sharing if "partitioned" in n)
    assert "aarch64" in line and "laptop1" in line
    assert "toolchain(s)" in plans["store1"].ccache.store.reasons["max_size"]
    one = plan_fleet(_fleet_facts(), GROUPS, Goals(), load_catalog(), cache_secrets_dir=str(tmp_path / "t"))
    assert plans["store1"].ccache.store.max_size_bytes > one["store1"].ccache.store.max_size_bytes


def test_published_toolchains_partition_the_cache_in_the_roles_path(tmp_path):
    """Hosts publish their toolchain (kbuild_host_farm_toolchain); pahole on one builder only
    splits the cache, and the store counts two toolchains."""
    from provision.fleet.members import TOOLCHAIN_VAR

    toolchains = json.loads((FIXTURES / "farm" / "toolchains.json").read_text())
    hv = {
        n: {"inventory_hostname": n, "ansible_facts": {"hostname": n, "default_ipv4": {"address": a}}}
        for n, a in ADDRESSES.items() if a
    }
    hv["store1"][TOOLCHAIN_VAR] = toolchains["deb12-current"]
    hv["ci1"][TOOLCHAIN_VAR] = toolchains["deb12-current"]
    hv["laptop1"][TOOLCHAIN_VAR] = toolchains["deb12-no-pahole"]
    groups = {**GROUPS, "all": ["store1", "ci1", "laptop1"]}
    store = cache_goals_from_hostvars("store1", hv, groups, {}, str(tmp_path))
    assert store["ccache_toolchains"] == 2
    assert any("partitioned" in n and "pahole" in n for n in store["ccache_fleet_notes"])


def test_the_store_must_listen_on_an_address_of_its_host():
    p = plan(facts("laptop-8c-16g"), server(listen="10.0.0.5", allow=("10.0.0.0/24",)), load_catalog())
    rv = p.to_role_vars()
    check_role_vars(rv, ["10.0.0.5", "192.168.1.2"])
    with pytest.raises(UserError, match="kbuild_host_ccache_store.listen"):
        check_role_vars(rv, ["192.168.1.2"])


def test_an_old_ccache_cannot_join_alone_and_is_excluded_in_a_fleet():
    old = facts("laptop-8c-16g")
    old = dataclasses.replace(old, toolchain={**old.toolchain, "ccache": "4.2.1"})
    with pytest.raises(UserError, match="4.4 or later"):
        plan(old, remote_goal(), load_catalog())
    fleet_goal = dataclasses.replace(remote_goal(), ccache_fleet_role="reader")
    c = plan(old, fleet_goal, load_catalog()).ccache
    assert c.remote is None and c.fleet_role.startswith("excluded: ccache 4.2.1")
