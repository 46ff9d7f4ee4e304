"""Paths kprov is handed and then writes through as root: the shared ccache directory and the
shared compile cache's secrets (issue 21, items 4, 5, 10 and 13).

* The ccache directory becomes root:kbuild 2775. A system tree (``/var/lib/dpkg``, ``/var/log``,
  ``/var/spool/cron``, ``/root/.ssh``...) is refused by its path, on the command line and in the
  role's validator; what only the host can tell - the directory holds other files, everyone may
  write it, it is a user's home directory - is refused by kprov from what it finds on this host,
  and by the role's kbuild_host_paths module on a managed host, before the directory is touched.
* A secret is a password whoever wrote the file chose: the secrets directory and its files must
  be the running user's own, 0700 / 0600, reached without following a link, never chmod-ed
  unless kprov has just made them. The same holds for ``--ccache-remote-secret FILE``.
* The secrets directory's path is only opened and handed over as an argument: any printable
  path will do (spaces, parentheses, ``!``, braces), never control characters or a Jinja start.
* A check run (``kprov apply --check``, the role in check mode) makes no secret file anywhere.

Everything happens below pytest's temporary directory; no test talks to the network.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from conftest import private_home
from test_fleet import gathered, load_filter_plugin
from test_role_contract import _Done, _load_module, _Run
from test_role_validate import _playbook, _unsafe, _yaml, baseline

from provision.apply import inventory
from provision.apply.inventory import InventoryFleet, InventoryHost
from provision.cli.app import Kprov
from provision.cli.commands import store_secrets
from provision.errors import UserError
from provision.facts import local
from provision.facts.catalog import load_catalog
from provision.model.facts import HostFacts
from provision.model.goals import CacheUser, Goals
from provision.planner import plan
from provision.role import backend
from provision.role.secrets import (
    check_secret_file,
    ensure_secret_file,
    ensure_secret_files,
    fleet_secrets_dir,
    missing_secret_files,
    read_secret_file,
)
from provision.rules.names import (
    CCACHE_ENTRIES,
    check_arg_path,
    check_found_dir,
    check_owned_dir,
)

ROOT = Path(__file__).resolve().parent.parent
ROLE = ROOT / "playbooks" / "roles" / "kbuild_host"
GOOD_FACTS = ROOT / "tests" / "fixtures" / "laptop-8c-16g.json"
NOBODY = 65534
#: A password another user chose (the token charset, as kprov's own are).
THEIRS = "Zk3v9Qx-_p0LmN4rT7yW2aB5cD8eF1gH6iJ0kL3mN9o"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="gives files to another user (chown): runs as root")


@pytest.fixture(autouse=True)
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HOME and state directory, no CCACHE_DIR: whatever kprov writes for a user lands here."""
    return private_home(tmp_path, monkeypatch)


def run(capsys, *args: str) -> tuple[int, str, str]:
    _, rc = Kprov.run(["kprov", *args], exit=False)
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(rc: int, out: str, err: str, needle: str) -> str:
    """Exit 2, nothing on stdout, one ``kprov:`` line holding ``needle``, no traceback."""
    assert rc == 2, (out[-400:], err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kprov: ") and "Traceback" not in err
    assert needle in lines[0], lines[0]
    return lines[0]


def state(path: Path) -> tuple[int, int, int, list[str]]:
    """What a refusal must leave as it was: owner, group, mode and the names inside."""
    st = os.lstat(path)
    names = sorted(os.listdir(path)) if stat.S_ISDIR(st.st_mode) else []
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), names


def runs(sandbox: Path) -> list[Path]:
    root = sandbox / "state" / "kprov" / "runs"
    return list(root.iterdir()) if root.exists() else []


# =========================================================================== item 4: the ccache directory


SYSTEM_TREES = ["/", "/etc", "/usr", "/boot", "/var/lib", "/var/log", "/var/spool", "/var/mail", "/root", "/home",
                "/var/tmp", "/var/cache", "/var/lib/dpkg", "/var/lib/dpkg/info", "/var/lib/apt/lists", "/var/spool/cron",
                "/var/spool/cron/crontabs", "/var/log/ccache", "/var/mail/ccache", "/root/.ssh", "/home/alice/.ssh",
                "/home/alice/.gnupg/x", "/etc/ccache", "/usr/local/ccache", "/boot/ccache", "/proc/ccache",
                "/sys/ccache", "/dev/shm/ccache", "/run/ccache", "/var/run/ccache", "/var/lock/ccache"]


@pytest.mark.parametrize("path", SYSTEM_TREES)
def test_a_system_tree_is_refused_by_its_path(path):
    with pytest.raises(UserError) as info:
        check_owned_dir(path, "--ccache-dir")
    assert "\n" not in str(info.value) and str(info.value).startswith("--ccache-dir ")


@pytest.mark.parametrize("path", ["/var/cache/ccache", "/home/alice/ccache", "/srv/ccache", "/var/lib/kprov/ccache-store",
                                  "/var/tmp/ccache", "/root/.cache/ccache", "/data/ccache"])
def test_a_directory_of_its_own_is_accepted_by_its_path(path):
    assert check_owned_dir(path, "--ccache-dir") == path


# The issue's list, as written: every one planned with exit 0 and "... is kbuild-writable".
ISSUE_DIRS = ["/var/lib/dpkg", "/var/lib", "/var/log", "/var/spool/cron", "/root/.ssh", "/var/mail", "/var/tmp"]


@pytest.mark.parametrize("path", ISSUE_DIRS)
def test_kprov_plan_refuses_the_issues_system_directories(capsys, path):
    before = state(Path(path)) if os.path.isdir(path) else None
    line = one_line(*run(capsys, "plan", "--ccache-dir", path), needle=f"--ccache-dir '{path}'")
    assert "kbuild-writable" not in line
    assert (state(Path(path)) if os.path.isdir(path) else None) == before


def _populated(tmp_path: Path) -> Path:
    """A directory that holds someone's files (a database, a spool)."""
    d = tmp_path / "srv" / "data"
    d.mkdir(parents=True)
    (d / "status").write_text("Package: bash\n")
    (d / "info").mkdir()
    return d


def _world(tmp_path: Path) -> Path:
    d = tmp_path / "srv" / "shared-tmp"
    d.mkdir(parents=True)
    d.chmod(0o1777)
    return d


def _home(tmp_path: Path, monkeypatch) -> Path:
    """An account of this host whose home directory is a new, empty directory (in the account
    database both kprov and the role's module read: the pwd module)."""
    import pwd

    home = tmp_path / "users" / "alice"
    home.mkdir(parents=True)
    real = pwd.getpwall()
    alice = pwd.struct_passwd(("alice", "x", 4242, 4242, "", str(home), "/bin/sh"))
    monkeypatch.setattr(pwd, "getpwall", lambda: [*real, alice])  # the one account database kprov and the module read
    return home


@pytest.mark.parametrize("kind, needle", [
    ("populated", "already holds files that are not a ccache cache"),
    ("world-writable", "writable by everyone"),
    ("home", "the home directory of 'alice'"),
    ("a file", "is not a directory"),
])
@pytest.mark.parametrize("command", [("plan",), ("plan", "--yaml"), ("env",), ("apply", "--check", "--tags", "ccache")])
def test_kprov_refuses_what_this_host_has_at_the_ccache_dir(tmp_path, sandbox, monkeypatch, capsys, kind, needle, command):
    if kind == "populated":
        target = _populated(tmp_path)
    elif kind == "world-writable":
        target = _world(tmp_path)
    elif kind == "home":
        target = _home(tmp_path, monkeypatch)
    else:
        target = tmp_path / "srv" / "file"
        target.parent.mkdir(parents=True)
        target.write_text("x")
    before = state(target)
    line = one_line(*run(capsys, *command, "--ccache-dir", str(target)), needle=needle)
    assert line.startswith(f"kprov: --ccache-dir '{target}': ")
    assert state(target) == before
    assert runs(sandbox) == []  # apply --check: Ansible never started


def test_ccache_dir_from_the_environment_is_judged_the_same(tmp_path, monkeypatch, capsys):
    target = _populated(tmp_path)
    monkeypatch.setenv("CCACHE_DIR", str(target))
    one_line(*run(capsys, "plan"), needle=f"the ccache directory '{target}': already holds files")


def _ccache_cache(tmp_path: Path) -> Path:
    """A cache ccache itself made (its stats, sixteen subdirectories, ccache.conf)."""
    d = tmp_path / "srv" / "ccache"
    env = {**os.environ, "CCACHE_DIR": str(d)}
    subprocess.run(["ccache", "-z"], env=env, check=True, capture_output=True, timeout=60)
    subprocess.run(["ccache", "-M", "1G"], env=env, check=True, capture_output=True, timeout=60)
    return d


@pytest.mark.parametrize("kind", ["new", "empty", "ccache's own", "a user's ccache below their home"])
def test_kprov_accepts_a_new_empty_or_ccache_directory(tmp_path, monkeypatch, capsys, kind):
    if kind == "new":
        target = tmp_path / "srv" / "new"
    elif kind == "empty":
        target = tmp_path / "srv" / "empty"
        target.mkdir(parents=True)
    elif kind == "ccache's own":
        target = _ccache_cache(tmp_path)
        assert any(len(n) == 1 for n in os.listdir(target)) and "ccache.conf" in os.listdir(target)
    else:
        target = _home(tmp_path, monkeypatch) / "ccache"
    rc, out, err = run(capsys, "plan", "--json", "--ccache-dir", str(target))
    assert rc == 0, err
    assert json.loads(out)["ccache"]["dir"] == str(target)


def test_a_private_cache_plans_no_shared_directory_and_is_not_judged(tmp_path, monkeypatch, capsys):
    home = _home(tmp_path, monkeypatch)
    monkeypatch.setenv("HOME", str(home))  # the private cache lives in the planning user's home
    rc, _, err = run(capsys, "plan", "--ccache-private")
    assert rc == 0, err


def test_the_host_rule_is_one_pure_rule():
    for kind in ("missing", "empty", "ccache", "shared", "symlink"):
        assert check_found_dir("/srv/c", kind, False, "", "--ccache-dir") == "/srv/c"
    for kind, world, home, needle in (("other", False, "", "not a ccache cache"), ("empty", True, "", "everyone"),
                                      ("missing", False, "alice", "home directory"),
                                      ("not_a_directory", False, "", "not a directory"),
                                      ("shared", False, "bob", "home directory")):
        with pytest.raises(UserError, match=needle):
            check_found_dir("/srv/c", kind, world, home, "--ccache-dir")
    with pytest.raises(UserError, match="expected one of"):
        check_found_dir("/srv/c", "weird", False, "", "--ccache-dir")


@pytest.mark.parametrize("path, why", [("/var/lib/dpkg", "a system directory"), ("/var/spool/cron", "a system directory"),
                                       ("/root/.ssh", "a directory of keys"), ("/var/tmp", "a system directory")])
def test_an_inventorys_goals_name_no_system_directory(tmp_path, monkeypatch, capsys, path, why):
    """kbuild_host_goals.ccache_dir in the inventory: kprov plan -i and the role's validator refuse it."""
    inv = _fleet(tmp_path, monkeypatch, store=False, host_vars={"kbuild_host_goals": {"ccache_dir": path}})
    one_line(*run(capsys, "plan", "-i", str(inv)), needle=f"'{path}': {why}")
    role_vars = baseline(full=True)
    role_vars["kbuild_host_ccache_dir"] = path
    with pytest.raises(UserError, match=why):
        backend.check_role_vars(role_vars, ["127.0.0.1"])


# --------------------------------------------------------------------------- the role on a managed host


def _module(monkeypatch, **params):
    monkeypatch.setattr(_Run, "params_given", params)
    module = _load_module("kbuild_host_paths", monkeypatch, _Run)
    with pytest.raises(_Done) as done:
        module.main()
    return module, done.value


def test_the_role_module_knows_ccaches_entries_as_kprov_does():
    from provision.facts.local import sysprobe

    assert sysprobe().CCACHE_ENTRIES == CCACHE_ENTRIES  # the module and kprov's facts read them from there


def _cases(tmp_path: Path, monkeypatch) -> dict[str, tuple[Path, str | None]]:
    """Directories and what the role must say of them (None: accepted)."""
    shared = tmp_path / "srv" / "shared"  # as the role leaves it (group root stands for kbuild here)
    shared.mkdir(parents=True)
    (shared / "notes.txt").write_text("left by a member")
    os.chown(shared, 0, 0)
    shared.chmod(0o2775)
    file = tmp_path / "srv" / "file"
    file.write_text("x")
    return {
        "populated": (_populated(tmp_path), "already holds files that are not a ccache cache"),
        "world-writable": (_world(tmp_path), "writable by everyone"),
        "home": (_home(tmp_path, monkeypatch), "the home directory of alice"),
        "a file": (file, "is not a directory"),
        "new": (tmp_path / "srv" / "new", None),
        "empty": (_mkdir(tmp_path / "srv" / "empty"), None),
        "ccache's own": (_ccache_cache(tmp_path), None),
        "already root:GROUP 2775": (shared, None),
    }


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def test_the_role_module_refuses_the_same_directories_as_kprov(tmp_path, monkeypatch):
    cases = _cases(tmp_path, monkeypatch)
    monkeypatch.setattr(local, "CCACHE_GROUP", "root")
    for name, (path, needle) in cases.items():
        before = state(path) if path.exists() else None
        _, done = _module(monkeypatch, paths=[str(path)], group_dirs=[str(path)], group="root")
        if needle is None:
            assert done.kind == "exit", (name, done.values)
        else:
            assert done.kind == "fail", name
            msg = done.values["msg"]
            assert msg.startswith("kbuild_host: refusing to hand a directory to group root: ") and needle in msg, msg
            assert "\n" not in msg
        # kprov judges its own host by the same rule (facts.local.found_dir + rules.names.check_found_dir)
        found = local.found_dir(path)
        try:
            check_found_dir(found.path, found.kind, found.world_writable, found.home_of, "--ccache-dir")
            kprov_refused = False
        except UserError:
            kprov_refused = True
        assert kprov_refused == (needle is not None), name
        assert (state(path) if path.exists() else None) == before


def test_the_role_module_home_check_reads_the_hosts_accounts(tmp_path, monkeypatch):
    """The module's own account lookup (pwd on the managed host), not kprov's."""
    import pwd

    home = tmp_path / "users" / "bob"
    home.mkdir(parents=True)
    bob = pwd.struct_passwd(("bob", "x", 4243, 4243, "", str(home), "/bin/sh"))
    real = pwd.getpwall()
    monkeypatch.setattr(pwd, "getpwall", lambda: [*real, bob])
    _, done = _module(monkeypatch, paths=[str(home)], group_dirs=[str(home)])
    assert done.kind == "fail" and "the home directory of bob" in done.values["msg"]
    _, done = _module(monkeypatch, paths=[str(home / "ccache")], group_dirs=[str(home / "ccache")])
    assert done.kind == "exit", done.values


def test_the_role_checks_the_directory_on_the_host_before_it_touches_it(tmp_path):
    """A whole role run as `kprov apply` runs it (plan as extra vars), ccache area, check mode: the
    directory holds someone's files, which kprov's path rules cannot see; the role's path check
    (tasks/validate.yml) stops the run before any area, the group or the directory, is touched."""
    target = _populated(tmp_path)
    before = state(target)
    site = tmp_path / "site"
    site.mkdir()
    role_vars = baseline(full=True)
    role_vars["kbuild_host_ccache_dir"] = str(target)
    (site / "vars.yml").write_text(_yaml(_unsafe(role_vars)))
    (site / "site.yml").write_text(
        "- name: Converge\n  hosts: localhost\n  gather_facts: true\n  roles:\n    - role: kbuild_host\n"
    )
    proc = _playbook(site, site / "site.yml", "-e", "@vars.yml", "--tags", "kbuild_host_ccache")
    out = proc.stdout
    assert proc.returncode == 2, out[-4000:]
    tasks = [line for line in out.splitlines() if line.startswith("TASK [")]
    assert tasks[-1].startswith("TASK [kbuild_host : Check the paths the role writes as root]"), tasks[-3:]
    assert "already holds files that are not a ccache cache" in out.split(tasks[-1], 1)[1], out[-4000:]
    recap = next(line for line in out.splitlines() if line.startswith("localhost") and "changed=" in line)
    assert "changed=0" in recap and "failed=1" in recap, recap
    assert state(target) == before


# =========================================================================== item 5: the fleet's secrets


def _fleet(tmp_path: Path, monkeypatch, store: bool = True, where: str = "ops", host_vars: dict | None = None) -> Path:
    """An inventory in a directory of root's, and its hosts as gather_fleet would have found them
    (nothing is gathered: Ansible does not run)."""
    inv_dir = tmp_path / where
    inv_dir.mkdir(mode=0o755, parents=True)
    inv_dir.chmod(0o755)
    hosts = {}
    for i, (name, address) in enumerate({"store1": "10.89.7.5", "ci1": "10.89.7.21"}.items()):
        setup, probe = gathered(name, 4 + 4 * i, 16, address)
        hosts[name] = InventoryHost(name=name, setup=setup, probe=probe, vars=dict(host_vars or {}))
    groups = {"all": list(hosts), "ungrouped": [] if store else list(hosts)}
    if store:
        groups.update(ccache_store=["store1"], ccache_writers=["ci1"])
    monkeypatch.setattr(inventory, "gather_fleet", lambda inv, limit=None: InventoryFleet(hosts=hosts, groups=groups))
    inv = inv_dir / "hosts.ini"
    inv.write_text("[ccache_store]\nstore1\n[ccache_writers]\nci1\n" if store else "store1\nci1\n")
    inv.chmod(0o644)
    return inv


def _victim(tmp_path: Path) -> Path:
    """A directory of someone else's that the secrets must never reach: mode 2775, a ccache/ inside."""
    victim = tmp_path / "victim"
    (victim / "ccache").mkdir(parents=True)
    (victim / "ccache").chmod(0o2775)
    victim.chmod(0o2775)
    return victim


def test_plan_i_makes_the_secrets_its_own_0700_0600_and_keeps_them(tmp_path, monkeypatch, capsys):
    inv = _fleet(tmp_path, monkeypatch)
    rc, _, err = run(capsys, "plan", "-i", str(inv))
    assert rc == 0, err
    top, secrets = inv.parent / "kprov-secrets", inv.parent / "kprov-secrets" / "ccache"
    for d in (top, secrets):
        st = os.lstat(d)
        assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o700
    made = {p.name: p.read_text() for p in secrets.iterdir()}
    assert set(made) == {"store1", "ci1"}
    for name in made:
        st = os.lstat(secrets / name)
        assert st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o600
    rc, _, err = run(capsys, "plan", "-i", str(inv))
    assert rc == 0, err
    assert {p.name: p.read_text() for p in secrets.iterdir()} == made  # never overwritten


def test_plan_i_never_follows_a_symlinked_secrets_directory(tmp_path, monkeypatch, capsys):
    """The issue's attack: <inventory dir>/kprov-secrets -> a victim directory; kprov used to chmod
    the victim's ccache/ from 2775 to 0700 and write host secrets into it."""
    inv = _fleet(tmp_path, monkeypatch)
    victim = _victim(tmp_path)
    (inv.parent / "kprov-secrets").symlink_to(victim)
    before = (state(victim), state(victim / "ccache"))
    one_line(*run(capsys, "plan", "-i", str(inv)), needle=f"{inv.parent / 'kprov-secrets'}: a symbolic link")
    assert (state(victim), state(victim / "ccache")) == before


def test_plan_i_never_follows_a_symlinked_ccache_directory(tmp_path, monkeypatch, capsys):
    inv = _fleet(tmp_path, monkeypatch)
    victim = _victim(tmp_path)
    (inv.parent / "kprov-secrets").mkdir(mode=0o700)
    (inv.parent / "kprov-secrets" / "ccache").symlink_to(victim / "ccache")
    before = state(victim / "ccache")
    one_line(*run(capsys, "plan", "-i", str(inv)), needle="kprov-secrets/ccache: a symbolic link")
    assert state(victim / "ccache") == before


def _theirs(inv: Path, owner_dirs: int, owner_file: int, file_mode: int = 0o600) -> Path:
    """kprov-secrets/ccache/store1 made by another user, holding a password that user chose."""
    top = inv.parent / "kprov-secrets"
    (top / "ccache").mkdir(parents=True)
    for d in (top, top / "ccache"):
        d.chmod(0o700)
        os.chown(d, owner_dirs, owner_dirs)
    secret = top / "ccache" / "store1"
    secret.write_text(THEIRS + "\n")
    secret.chmod(file_mode)
    os.chown(secret, owner_file, owner_file)
    return secret


@pytest.mark.parametrize("dirs, file, needle", [
    (NOBODY, NOBODY, "kprov-secrets: owned by nobody (uid 65534), not by you"),
    (0, NOBODY, "ccache/store1: owned by nobody (uid 65534), not by you"),
], ids=["their directory", "their file in yours"])
def test_plan_i_refuses_secrets_another_user_made(tmp_path, monkeypatch, capsys, dirs, file, needle):
    inv = _fleet(tmp_path, monkeypatch)
    secret = _theirs(inv, dirs, file)
    before = state(secret.parent)
    line = one_line(*run(capsys, "plan", "-i", str(inv)), needle=needle)
    assert THEIRS not in line
    assert state(secret.parent) == before and secret.read_text() == THEIRS + "\n"


def test_plan_i_never_chmods_a_secrets_directory_it_did_not_make(tmp_path, monkeypatch, capsys):
    inv = _fleet(tmp_path, monkeypatch)
    top = inv.parent / "kprov-secrets"
    top.mkdir()
    top.chmod(0o755)
    one_line(*run(capsys, "plan", "-i", str(inv)), needle=f"{top}: mode 0755 lets others in (expected 0700: chmod 700 {top})")
    assert stat.S_IMODE(top.stat().st_mode) == 0o755 and list(top.iterdir()) == []


@pytest.mark.parametrize("kind", ["symlink", "group-readable", "fifo"])
def test_plan_i_refuses_a_bad_existing_secret_file(tmp_path, monkeypatch, capsys, kind):
    inv = _fleet(tmp_path, monkeypatch)
    secrets = inv.parent / "kprov-secrets" / "ccache"
    secrets.mkdir(parents=True)
    for d in (secrets.parent, secrets):
        d.chmod(0o700)
    target = tmp_path / "elsewhere"
    target.write_text(THEIRS + "\n")
    target.chmod(0o600)
    if kind == "symlink":
        (secrets / "store1").symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(secrets / "store1", 0o600)
    else:
        (secrets / "store1").write_text(THEIRS + "\n")
        (secrets / "store1").chmod(0o640)
    needle = {"symlink": "is a symbolic link", "fifo": "not a regular file", "group-readable": "mode 0640"}[kind]
    one_line(*run(capsys, "plan", "-i", str(inv)), needle=needle)
    assert target.read_text() == THEIRS + "\n"


def test_the_roles_filter_refuses_a_symlinked_secrets_directory(tmp_path):
    """The role's path: kprov_cache_goals makes the secrets on the controller, by the same checks."""
    filters = load_filter_plugin()
    victim = _victim(tmp_path)
    inv_dir = tmp_path / "inv"
    inv_dir.mkdir()
    (inv_dir / "kprov-secrets").symlink_to(victim)
    hv, groups = _hostvars()
    before = state(victim / "ccache")
    for check_mode in (False, True):
        with pytest.raises(Exception, match="kprov-secrets: a symbolic link") as info:
            filters.kprov_cache_goals("store1", hv, groups, {}, str(inv_dir / "kprov-secrets" / "ccache"),
                                      check_mode=check_mode)
        assert isinstance(info.value, AnsibleFilterError) and "\n" not in str(info.value)
    assert state(victim / "ccache") == before


def _hostvars() -> tuple[dict, dict]:
    hv = {}
    for name, address in {"store1": "10.89.7.5", "ci1": "10.89.7.21"}.items():
        setup, _ = gathered(name, 4, 16, address)
        hv[name] = {"ansible_facts": {k[len("ansible_"):]: v for k, v in setup.items()}, "inventory_hostname": name,
                    "kbuild_host_farm_address": address}
    return hv, {"all": list(hv), "ccache_store": ["store1"], "ccache_writers": ["ci1"]}


# --------------------------------------------------------------------------- --ccache-remote-secret FILE


def _remote(capsys, secret: Path) -> tuple[int, str, str]:
    return run(capsys, "plan", "--facts", str(GOOD_FACTS), "--ccache-remote", "redis://127.0.0.1:6380",
               "--ccache-remote-secret", str(secret))


def test_a_remote_secret_another_user_owns_is_refused(tmp_path, capsys):
    secret = tmp_path / "secret"
    secret.write_text(THEIRS + "\n")
    secret.chmod(0o600)
    rc, out, err = _remote(capsys, secret)
    assert rc == 0, err  # the running user's own file: accepted
    os.chown(secret, NOBODY, NOBODY)
    line = one_line(*_remote(capsys, secret), needle="owned by nobody (uid 65534), not by you")
    assert THEIRS not in line


def test_a_remote_secret_in_a_directory_another_user_owns_is_refused(tmp_path, capsys):
    """Its owner could swap the file between kprov's check and the role's read."""
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, NOBODY, NOBODY)
    secret = theirs / "secret"
    secret.write_text(THEIRS + "\n")
    secret.chmod(0o600)
    one_line(*_remote(capsys, secret), needle=f"{theirs} belongs to nobody (uid 65534), who could replace the secret file")


def test_a_remote_secret_in_a_group_writable_directory_is_refused(tmp_path, capsys):
    team = tmp_path / "team"
    team.mkdir()
    team.chmod(0o2775)
    secret = team / "secret"
    secret.write_text(THEIRS + "\n")
    secret.chmod(0o600)
    one_line(*_remote(capsys, secret), needle="may be written by its group or everyone")


# =========================================================================== item 10: a path as an argument


ODD = "my infra (prod) !{x}"


@pytest.mark.parametrize("path", [f"/srv/{ODD}/kprov-secrets/ccache", "/srv/caf\u00e9/x", "/srv/a b/c'd/e\"f/$g"])
def test_an_argument_path_may_hold_any_printable_character(path):
    assert check_arg_path(path, "the fleet's secrets directory") == path


@pytest.mark.parametrize("path, needle", [
    ("/srv/a\nb", "control characters"), ("/srv/a\rb", "control characters"), ("/srv/a\x1b[2Jb", "control characters"),
    ("/srv/a\u2028b", "control characters"), ("/srv/a\u202eb", "control characters"), ("/srv/a\udcffb", "control characters"),
    ("/srv/{{ lookup('pipe', 'id') }}", "a template"), ("/srv/{% if 1 %}", "a template"), ("/srv/{# x #}", "a template"),
    ("/srv/../etc", "'..'"), ("srv/x", "absolute"), ("", "empty"), ("/" + "a" * 256, "255 bytes"),
])
def test_an_argument_path_is_still_checked(path, needle):
    with pytest.raises(UserError, match=needle) as info:
        check_arg_path(path, "the fleet's secrets directory")
    assert "\n" not in str(info.value)


def test_plan_i_plans_an_inventory_whose_path_holds_spaces_parentheses_bangs_and_braces(tmp_path, monkeypatch, capsys):
    inv = _fleet(tmp_path, monkeypatch, store=False, where=ODD)
    rc, out, err = run(capsys, "plan", "-i", str(inv), "--json")
    assert rc == 0, err
    assert set(json.loads(out)["hosts"]) == {"store1", "ci1"}
    assert fleet_secrets_dir(str(inv)) == str(inv.parent / "kprov-secrets" / "ccache")


def test_secret_files_work_in_such_a_path(tmp_path):
    secrets = tmp_path / ODD / "kprov-secrets" / "ccache"
    files = [(str(secrets / "store1"), "store1"), (str(secrets / "ci1"), "ci1")]
    assert missing_secret_files(files) == tuple(p for p, _ in files)
    assert ensure_secret_files(files) == tuple(p for p, _ in files)
    assert missing_secret_files(files) == ()
    token = read_secret_file(str(secrets / "ci1"), "--ccache-remote-secret")
    assert check_secret_file(str(secrets / "ci1"), "--ccache-remote-secret") == str(secrets / "ci1")
    assert ensure_secret_file(str(secrets / "ci1")) is False and read_secret_file(str(secrets / "ci1"), "x") == token


def test_a_secret_path_with_a_newline_is_refused_before_anything_is_made(tmp_path):
    bad = tmp_path / "a\nb" / "kprov-secrets" / "ccache" / "store1"
    with pytest.raises(UserError, match="control characters"):
        ensure_secret_files([(str(bad), "store1")])
    assert not (tmp_path / "a\nb").exists()


# =========================================================================== item 13: check mode makes nothing


def test_the_backend_makes_no_secret_in_check_mode_and_one_in_a_real_run(tmp_path):
    hv, groups = _hostvars()
    secrets = tmp_path / "inv" / "kprov-secrets" / "ccache"
    goals = backend.cache_goals("store1", hv, groups, {}, str(secrets), check_mode=True)
    assert {u["name"] for u in goals["ccache_users"]} == {"store1", "ci1"}
    assert not (tmp_path / "inv").exists()  # not even the directories
    assert backend.cache_goals("store1", hv, groups, {}, str(secrets)) == goals
    assert sorted(p.name for p in secrets.iterdir()) == ["ci1", "store1"]


def test_the_roles_filter_passes_check_mode_to_kprov(tmp_path):
    filters = load_filter_plugin()
    hv, groups = _hostvars()
    secrets = tmp_path / "inv" / "kprov-secrets" / "ccache"
    for flag in (True, "yes", "True"):
        filters.kprov_cache_goals("store1", hv, groups, {}, str(secrets), check_mode=flag)
    assert not (tmp_path / "inv").exists()
    with pytest.raises(Exception, match="ansible_check_mode") as info:
        filters.kprov_cache_goals("store1", hv, groups, {}, str(secrets), check_mode="perhaps")
    assert isinstance(info.value, AnsibleFilterError)
    filters.kprov_cache_goals("store1", hv, groups, {}, str(secrets))
    assert sorted(p.name for p in secrets.iterdir()) == ["ci1", "store1"]


def test_the_roles_plan_hands_its_check_mode_to_every_cache_goals_call():
    tasks = yaml.safe_load((ROLE / "tasks" / "plan.yml").read_text())
    calls = [t["ansible.builtin.set_fact"]["__kbuild_host_cache_goals"] for t in tasks
             if "__kbuild_host_cache_goals" in (t.get("ansible.builtin.set_fact") or {})]
    assert len(calls) == 2
    assert all("kprov_cache_goals(" in c and "check_mode=ansible_check_mode" in c for c in calls), calls


PLAN_PLAY = """\
- name: Plan the fleet's cache as the role does
  hosts: all
  gather_facts: true
  tasks:
    - name: The role's planning tasks
      ansible.builtin.include_role:
        name: kbuild_host
        tasks_from: plan.yml
"""


def test_the_role_in_check_mode_makes_no_secret_and_notes_what_it_would(tmp_path):
    """The role's own planning (what `kprov apply -i --check` runs) with this host as the store."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "hosts.ini").write_text(
        "[ccache_store]\n"
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable} "
        "kbuild_host_farm_address=10.89.7.5\n"
    )
    (site / "plan.yml").write_text(PLAN_PLAY)
    proc = _check_play(site, check=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert not (site / "kprov-secrets").exists()
    assert "a real run would create the secret files" in proc.stdout and str(site / "kprov-secrets" / "ccache" / "localhost") in proc.stdout
    proc = _check_play(site, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    made = site / "kprov-secrets" / "ccache" / "localhost"
    assert stat.S_IMODE(made.stat().st_mode) == 0o600 and "a real run would create" not in proc.stdout


def _check_play(site: Path, check: bool) -> subprocess.CompletedProcess[str]:
    from test_role_validate import build_env

    (site / "ansible.cfg").write_text("[defaults]\nshow_custom_stats = true\n")
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "hosts.ini", *(["--check"] if check else []),
            "plan.yml"]
    return subprocess.run(argv, cwd=site, env=build_env(site, False), capture_output=True, text=True, timeout=900,
                          check=False)


def test_local_apply_check_makes_no_store_secret_and_checks_the_existing_ones(tmp_path, capsys):
    facts = HostFacts.from_dict(json.loads((ROOT / "tests" / "fixtures" / "workstation-64c-256g.json").read_text()))
    own = facts.hostname.split(".")[0]
    secrets = tmp_path / "s"
    users = (CacheUser(own, True, str(secrets / own)), CacheUser("laptop", False, str(secrets / "laptop")))
    p = plan(facts, Goals(ccache_server=True, listen="127.0.0.1", ccache_users=users), load_catalog())
    store_secrets(p, check=True)
    err = capsys.readouterr().err
    assert not secrets.exists()
    assert f"would create the store secret {secrets / 'laptop'}" in err
    victim = _victim(tmp_path)
    secrets.symlink_to(victim / "ccache")
    before = state(victim / "ccache")
    for check in (True, False):
        with pytest.raises(UserError, match="a symbolic link"):
            store_secrets(p, check=check)
    assert state(victim / "ccache") == before
