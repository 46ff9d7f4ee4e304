"""The ``kprov`` command line: plan, facts, env, apply, calibrate.

Every error kprov knows about is a :class:`KprovError`; the application catches only that, prints
``kprov: <one line>`` on stderr and exits 2 (bad input) or 1 (the host or Ansible said no). Bad
switches from plumbum itself become the same one-line error instead of a help dump. Input is
checked before anything is measured or planned: switch values by their types here (ASCII whole
numbers in range, no empty text), goals by the validators, then facts, then the plan. Output goes
through :func:`emit`: a closed pipe or a full disk on stdout is one line on stderr and exit 1.

``kprov plan`` must stay fast and never import ansible_runner: the runner and the inventory code
are imported inside the subcommands that need them.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys

from plumbum import cli
from plumbum.cli.application import ShowCompletion, ShowHelp, ShowHelpAll, ShowVersion
from plumbum.cli.switches import SwitchError

import provision
from provision.errors import EnvironmentProblem, KprovError, UserError
from provision.model import COMPILERS, DEBUG_INFO, LTO, TARGETS, Goals, HostEntry, HostFacts, Plan


_BAD_ARGUMENT = re.compile(r"Argument of ([\w-]+) expected to be (.+?), not ('.*?'|\".*?\")")


def _switch_message(exc: SwitchError) -> str:
    """plumbum names the switch without its dashes ("Argument of zram-percent ..."): put them back."""
    text = " ".join(str(exc).split())
    match = _BAD_ARGUMENT.search(text)
    if match:
        name, expected, value = match.groups()
        dashes = "-" if len(name) == 1 else "--"
        return f"{dashes}{name.replace('_', '-')}: {value} is not valid (expected {expected})"
    return text


class Whole:
    """A switch's whole number: ASCII digits only, at most ``digits`` of them, in ``low..high``.

    plumbum's ``int`` and ``cli.Range`` take what Python's ``int()`` takes, which includes "٣"
    and other non-ASCII digits and numbers of any length.
    """

    def __init__(self, low: int | None = None, high: int | None = None, digits: int = 9):
        self.low, self.high, self.digits = low, high, digits

    def __call__(self, text: str) -> int:
        if not re.fullmatch(rf"[0-9]{{1,{self.digits}}}", text.strip()):
            raise ValueError(text)
        value = int(text.strip())
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ValueError(text)
        return value

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"a whole number in {self.low}..{self.high}"
        return "a whole number"


class Text:
    """A switch's text that must say something: an empty ``--facts ''`` would silently mean
    "not given" (plan this host instead of the file)."""

    def __init__(self, what: str):
        self.what = what

    def __call__(self, text: str) -> str:
        if not text.strip():
            raise ValueError(text)
        return text

    def __str__(self) -> str:
        return self.what


def emit(text: str) -> None:
    """Write ``text`` to stdout now. Characters the locale cannot encode are escaped (a host name
    "höst" under LC_ALL=C), and a write that fails (the reader went away, /dev/full) becomes an
    EnvironmentProblem."""
    out = sys.stdout
    encoding = getattr(out, "encoding", None) or "utf-8"
    text = text.encode(encoding, "backslashreplace").decode(encoding, "replace")
    try:
        out.write(text)
        out.flush()
    except OSError as exc:
        raise _output_failed(out, exc) from None


def _output_failed(stream: object, exc: OSError) -> EnvironmentProblem:
    """The error for a failed write to ``stream``, which is pointed at /dev/null so that the
    interpreter's last flush of what it still buffers is quiet."""
    # io.UnsupportedOperation (a captured stdout without a file descriptor) is an OSError too
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())  # type: ignore[attr-defined]
        os.close(devnull)
    return EnvironmentProblem(f"cannot write the output: {exc.strerror or exc}")


class GuardedOutput:
    """stdout for a whole kprov run: what writes to it without :func:`emit` (plumbum's --help,
    Ansible's progress lines) fails the same way, as one line and exit 1, instead of plumbum's
    silent exit 1 on a closed pipe or a traceback on a full disk."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise _output_failed(self._stream, exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise _output_failed(self._stream, exc) from None

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _say(line: str) -> None:
    """One line on stderr, if there is a stderr to write to."""
    if sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):
            print(line, file=sys.stderr, flush=True)


class KprovApp(cli.Application):
    """plumbum Application that reports KprovError (and switch errors) as one line."""

    @classmethod
    def run(cls, argv=None, *, exit=True):  # noqa: A002 - plumbum's signature
        if exit and sys.stdout is None:  # started with stdout closed (kprov plan >&-)
            _say("kprov: standard output is closed: give kprov somewhere to write (e.g. >/dev/null)")
            sys.exit(1)
        if exit and not isinstance(sys.stdout, GuardedOutput):
            with contextlib.suppress(AttributeError, ValueError):
                # what bypasses emit (Ansible's progress lines) must not die on a non-ASCII name either
                sys.stdout.reconfigure(errors="backslashreplace")
            sys.stdout = GuardedOutput(sys.stdout)
        try:
            inst, rc = super().run(argv, exit=False)
            if exit:
                emit("")  # flush what is buffered while a failure can still be reported
        except KprovError as exc:
            _say(f"kprov: {exc.message}")
            inst, rc = None, exc.exit_code
        except KeyboardInterrupt:
            _say("kprov: interrupted")
            inst, rc = None, 130
        if exit:
            sys.exit(rc)
        return inst, rc

    # plumbum signals --help/--version with SwitchError subclasses: let those through.
    _META = (ShowHelp, ShowHelpAll, ShowVersion, ShowCompletion)

    def _parse_args(self, argv):
        try:
            return super()._parse_args(argv)
        except SwitchError as exc:
            if isinstance(exc, self._META):
                raise
            raise UserError(f"{self.PROGNAME}: {_switch_message(exc)}") from None

    def _validate_args(self, swfuncs, tailargs):
        try:
            return super()._validate_args(swfuncs, tailargs)
        except SwitchError as exc:
            if isinstance(exc, self._META):
                raise
            raise UserError(f"{self.PROGNAME}: {_switch_message(exc)}") from None


class Kprov(KprovApp):
    """Plan and apply a Linux kernel build host: -j, zram swap, ccache, distcc, build deps."""

    PROGNAME = "kprov"
    VERSION = provision.__version__
    DESCRIPTION = (
        "Measure this host, plan the kernel build's -j, zram swap, ccache and distcc with a "
        "reason for every number, and apply the plan with Ansible"
    )

    def main(self, *args):
        if args:
            raise UserError(f"unknown command '{args[0]}' (try: kprov plan, kprov --help)")
        if not self.nested_command:
            raise UserError("no command given: kprov plan, facts, env, apply or calibrate (kprov --help tells more)")
        return 0


# --------------------------------------------------------------------------- shared switches


class SourceSwitches:
    """Where the facts come from: this host (default), a facts file, or an inventory."""

    facts_file = cli.SwitchAttr(
        "--facts", Text("a file name"), argname="FILE",
        help="Plan for the host described by FILE (kprov facts --json)",
    )
    ansible_facts_file = cli.SwitchAttr(
        "--ansible-facts", Text("a file name"), argname="FILE",
        help="Plan for the host described by Ansible setup facts (ansible -m setup output)",
    )
    tree = cli.SwitchAttr(
        "--tree", Text("a directory"), argname="PATH",
        help="The kernel source tree to build (reads its Makefile, .config, changes.rst)",
    )
    build_dir = cli.SwitchAttr(
        "--build-dir", Text("a directory"), argname="PATH", help="Out-of-tree build directory (make O=)"
    )
    ccache_dir = cli.SwitchAttr("--ccache-dir", Text("a directory"), argname="PATH", help="ccache directory")

    def load_facts(self) -> HostFacts:
        if self.facts_file and self.ansible_facts_file:
            raise UserError("--facts and --ansible-facts are exclusive: name one facts file")
        if self.tree is not None and (self.facts_file or self.ansible_facts_file):
            # the tree is read on this host; a facts file describes another one (and its tree)
            raise UserError("--tree reads a tree on this host: it does not go with --facts/--ansible-facts")
        if self.facts_file:
            from provision.facts import load_facts_file

            return load_facts_file(self.facts_file)
        if self.ansible_facts_file:
            from provision.ansible_facts import load_ansible_facts_file

            return load_ansible_facts_file(self.ansible_facts_file)
        from provision.facts import gather

        return gather(tree=self.tree, build_dir=self.build_dir, ccache_dir=self.ccache_dir)


class PlanningSwitches(SourceSwitches):
    """The switches that shape a plan; `plan`, `env` and `apply` all take them."""

    target = cli.SwitchAttr("--target", cli.Set(*TARGETS), help="Kernel config target")
    compiler = cli.SwitchAttr("--compiler", cli.Set(*COMPILERS), default="auto", help="Compiler")
    debug_info = cli.SwitchAttr("--debug-info", cli.Set(*DEBUG_INFO), default="auto", help="Debug info")
    lto = cli.SwitchAttr("--lto", cli.Set(*LTO), default="auto", help="Link-time optimisation")
    for_other_machine = cli.Flag(
        "--for-other-machine", help="The kernel is not for this host (no localmodconfig advice)"
    )
    jobs = cli.SwitchAttr("--jobs", Whole(1, 4096), argname="N", help="Force make -jN")
    load = cli.SwitchAttr(
        "--load", Whole(1, 4096), argname="N", help="Also pass make -l N (off by default: see the plan's reason)"
    )
    zram_on = cli.Flag("--zram", help="Force zram swap on")
    zram_off = cli.Flag("--no-zram", help="Force zram swap off")
    zram_percent = cli.SwitchAttr(
        "--zram-percent", Whole(), argname="P", help="zram device size, percent of RAM (1..200)"
    )
    zram_algorithm = cli.SwitchAttr(
        "--zram-algorithm", Text("a compressor name"), argname="ALGO",
        help="zram compressor (one the kernel offers)",
    )
    ccache_on = cli.Flag("--ccache", help="Force ccache on")
    ccache_off = cli.Flag("--no-ccache", help="Force ccache off")
    ccache_size = cli.SwitchAttr(
        "--ccache-size", Text("a size such as 8G"), argname="SIZE", help="ccache max_size, e.g. 8G, 512M"
    )
    ccache_shared = cli.Flag("--ccache-shared", help="Share the cache between trees or machines")
    ccache_group_add = cli.SwitchAttr(
        "--ccache-group-add", Text("a user name"), list=True, argname="USER",
        help="Add this existing user to the shared ccache's group: it can then affect every build (repeat)",
    )
    ccache_private = cli.Flag(
        "--ccache-private", help="No shared ccache directory or group: every user keeps ccache's own default"
    )
    builds_to_keep = cli.SwitchAttr(
        "--builds-to-keep", Whole(1, 100), default=2, argname="N", help="Builds ccache should hold"
    )
    distcc_server = cli.Flag("--distcc-server", help="Run distccd on this host")
    allow = cli.SwitchAttr(
        "--allow", Text("a network such as 10.0.0.0/24"), list=True, argname="CIDR",
        help="Network allowed to use distccd (repeat)",
    )
    allow_public = cli.Flag("--allow-public", help="Permit public ranges in --allow")
    listen = cli.SwitchAttr(
        "--listen", Text("an address of this host"), argname="ADDRESS",
        help="Address distccd (or the compile-cache store) binds to",
    )
    distcc_hosts = cli.SwitchAttr(
        "--distcc-hosts", Text("HOST[:PORT][/LIMIT]"), list=True, argname="HOST[:PORT][/LIMIT]",
        help="distcc server to use (repeat)",
    )
    ccache_server = cli.Flag(
        "--ccache-server", help="Run the shared compile-cache store on this host (with --listen, --allow)"
    )
    ccache_backend = cli.SwitchAttr(
        "--ccache-backend", cli.Set("redis", "http"), argname="BACKEND",
        help="The store's backend (default: Redis when it fits in RAM, else nginx WebDAV on disk)",
    )
    ccache_port = cli.SwitchAttr("--ccache-port", Whole(1, 65535, 5), argname="N", help="The store's TCP port")
    ccache_clients = cli.SwitchAttr(
        "--ccache-client", Text("NAME or NAME:write"), list=True, argname="NAME[:write]",
        help="A host that may use the store, with a credential of its own; :write lets it upload (repeat)",
    )
    ccache_remote = cli.SwitchAttr(
        "--ccache-remote", Text("a store URL"), argname="URL",
        help="Use this compile-cache store behind the local cache (redis://HOST:PORT or http://HOST:PORT/cache/)",
    )
    ccache_remote_secret = cli.SwitchAttr(
        "--ccache-remote-secret", Text("a file name"), argname="FILE",
        help="The file (mode 0600) holding this host's store password",
    )
    ccache_remote_user = cli.SwitchAttr(
        "--ccache-remote-user", Text("a store user name"), argname="NAME",
        help="This host's store user (default: its short host name)",
    )
    ccache_remote_write = cli.Flag("--ccache-remote-write", help="Upload results to the store (default: read only)")
    ccache_remote_only = cli.Flag("--ccache-remote-only", help="Keep no local cache: only the store (small disks)")
    host_entries = cli.SwitchAttr(
        "--host-entry", Text("ADDRESS=NAME[,NAME]"), list=True, argname="ADDRESS=NAME[,NAME]",
        help="/etc/hosts entry for a build host, in kprov's marked block (repeat)",
    )

    @staticmethod
    def _pair(on: bool, off: bool, name: str) -> bool | None:
        if on and off:
            raise UserError(f"--{name} and --no-{name} contradict each other: give one")
        return True if on else False if off else None

    def _group_users(self) -> tuple[str, ...]:
        """``--ccache-group-add`` users: valid names, and for this host (no inventory) existing accounts."""
        import pwd

        from provision.validate import check_user_name

        if self.ccache_private:
            if getattr(self, "_explicit_ccache_dir", self.ccache_dir) is not None:
                raise UserError(f"--ccache-private and --ccache-dir {self.ccache_dir} contradict each other: give one")
            if self.ccache_group_add:
                raise UserError(
                    f"--ccache-private and --ccache-group-add {self.ccache_group_add[0]} contradict each other: "
                    "a private cache has no group"
                )
        users = tuple(dict.fromkeys(check_user_name(u, "--ccache-group-add") for u in self.ccache_group_add))
        # the accounts of this host: a facts file or an inventory plans other hosts (the role checks there)
        if not (getattr(self, "inventory", None) or self.facts_file or self.ansible_facts_file):
            for user in users:
                try:
                    pwd.getpwnam(user)
                except KeyError:
                    raise UserError(f"--ccache-group-add {user}: no such user on this host") from None
        return users

    def _cache_goals(self) -> dict:
        """The shared compile cache's switches as Goals fields; the secret file is checked now."""
        from provision.cache import local_secret_file, own_user_name
        from provision.model import CacheRemoteGoal, CacheUser
        from provision.validate import check_store_client, check_store_url, check_store_user

        inventory = getattr(self, "inventory", None)
        if inventory and (self.ccache_server or self.ccache_clients):
            # the role plans each host on the controller: the store and its users come from the inventory
            raise UserError(
                f"{'--ccache-server' if self.ccache_server else '--ccache-client'} plans a store on this host: "
                "with -i, put the store host in the inventory group ccache_store (writers in ccache_writers)"
            )
        if inventory and self.ccache_remote is not None:
            # one URL and one secret for every host would be one credential for the whole fleet:
            # no host could be revoked alone
            raise UserError(
                "--ccache-remote joins one host with its own credential: with -i, put the store host in the "
                "inventory group ccache_store (writers in ccache_writers), and each host gets its own"
            )
        if not self.ccache_server:
            for name, given in (("--ccache-backend", self.ccache_backend), ("--ccache-port", self.ccache_port),
                                ("--ccache-client", self.ccache_clients)):
                if given and not inventory:  # with -i they shape the inventory's store
                    raise UserError(f"{name} shapes the store this host runs: it needs --ccache-server")
        if self.ccache_remote is None:
            for name, given in (("--ccache-remote-secret", self.ccache_remote_secret),
                                ("--ccache-remote-user", self.ccache_remote_user),
                                ("--ccache-remote-write", self.ccache_remote_write),
                                ("--ccache-remote-only", self.ccache_remote_only)):
                if given:
                    raise UserError(f"{name} needs --ccache-remote URL: the store to use")
        elif self.ccache_server:
            raise UserError("--ccache-server and --ccache-remote: a store host uses its own store; give one")
        users = []
        for spec in self.ccache_clients:  # a name given twice is the planner's error (cache._store_users)
            name, write = check_store_client(spec)
            users.append(CacheUser(name, write, local_secret_file(name)))
        remote = None
        if self.ccache_remote is not None:
            url = str(check_store_url(self.ccache_remote, "--ccache-remote"))
            if self.ccache_remote_secret is None:
                raise UserError("--ccache-remote needs --ccache-remote-secret FILE: the file holding this host's password")
            from provision.cache_status import check_secret_file

            secret_file = check_secret_file(os.path.abspath(self.ccache_remote_secret), "--ccache-remote-secret")
            if self.ccache_remote_user is None:
                user = own_user_name(os.uname().nodename)
            else:
                user = check_store_user(self.ccache_remote_user, "--ccache-remote-user")
            remote = CacheRemoteGoal(
                url=url,
                user=user,
                secret_file=secret_file,
                write=self.ccache_remote_write,
                only=self.ccache_remote_only,
            )
        return {
            "ccache_server": self.ccache_server,
            "ccache_backend": self.ccache_backend,
            "ccache_port": self.ccache_port,
            "ccache_users": tuple(users),
            "ccache_remote": remote,
        }

    def goals(self) -> Goals:
        """The switches as Goals, with every value the validators can judge alone checked now,
        before any fact is read (the planner checks them again against the facts)."""
        from provision.calibration import DISTCC_MAX_LIMIT
        from provision.validate import parse_allow, parse_distcc_host, parse_ip, parse_size

        if self.allow:
            parse_allow(tuple(self.allow), self.allow_public)
        if self.listen is not None:
            parse_ip(self.listen, "--listen")
        for spec in self.distcc_hosts:
            parse_distcc_host(spec, DISTCC_MAX_LIMIT)
        entries = []
        for raw in self.host_entries:
            address, sep, names = raw.partition("=")
            if not sep or not address.strip() or not names.strip():
                raise UserError(f"--host-entry '{raw}': expected ADDRESS=NAME[,NAME...]")
            entries.append(HostEntry(address.strip(), tuple(n.strip() for n in names.split(",") if n.strip())))
        return Goals(
            target=self.target,
            compiler=self.compiler,
            debug_info=self.debug_info,
            lto=self.lto,
            for_this_machine=not self.for_other_machine,
            build_dir=self.build_dir,
            jobs=self.jobs,
            load=None if self.load is None else float(self.load),
            zram=self._pair(self.zram_on, self.zram_off, "zram"),
            zram_percent=self.zram_percent,
            zram_algorithm=self.zram_algorithm,
            ccache=self._pair(self.ccache_on, self.ccache_off, "ccache"),
            ccache_size_bytes=None if self.ccache_size is None else parse_size(self.ccache_size, "--ccache-size"),
            ccache_dir=self.ccache_dir,
            ccache_shared=self.ccache_shared,
            ccache_group_add=self._group_users(),
            ccache_private=self.ccache_private,
            builds_to_keep=self.builds_to_keep,
            distcc_server=self.distcc_server,
            allow=tuple(self.allow),
            allow_public=self.allow_public,
            listen=self.listen,
            distcc_hosts=tuple(self.distcc_hosts),
            host_entries=tuple(entries),
            **self._cache_goals(),
        )

    def make_plan(self) -> Plan:
        from provision.catalog import load_catalog
        from provision.planner import plan

        goals = self.goals()
        facts = self.load_facts()
        tree_eval = None
        if facts.tree is not None and facts.source == "local":
            # the planned target's real .config, evaluated in a scratch O= (seconds), and a
            # calibration profile of it when one exists
            from provision.kconfig import tree_evaluation

            tree_eval = tree_evaluation(facts, goals, say=lambda line: _say(f"kprov: {line}"))
        return plan(facts, goals, load_catalog(), tree_eval)


class InventorySwitches:
    inventory = cli.SwitchAttr(
        ["-i", "--inventory"], Text("an inventory file"), argname="INVENTORY",
        help="Ansible inventory: plan or apply every host in it",
    )
    limit = cli.SwitchAttr(
        "--limit", Text("a host pattern"), argname="PATTERN", help="Only the inventory hosts that match"
    )

    def check_inventory(self) -> None:
        """An inventory that exists must be a file or a directory: Ansible would block on a FIFO
        and read a device forever. (A name that does not exist is left to Ansible: it may be a
        host list such as ``web1,web2,``.)"""
        try:
            mode = os.stat(self.inventory).st_mode
        except (OSError, ValueError):
            return
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise UserError(f"-i {self.inventory}: not a regular file or a directory")


# --------------------------------------------------------------------------- plan


@Kprov.subcommand("plan")
class PlanCommand(KprovApp, PlanningSwitches, InventorySwitches):
    """Print the plan for this host (or another host's facts, or every host of an inventory)"""

    as_json = cli.Flag("--json", help="The plan as JSON")
    as_yaml = cli.Flag("--yaml", help="The plan as role variables (YAML) for host_vars/")

    def main(self, *args):
        if args:
            raise UserError(f"kprov plan takes no arguments (got '{args[0]}')")
        if self.as_json and self.as_yaml:
            raise UserError("--json and --yaml are exclusive: choose one output")
        from provision import render

        if self.inventory:
            return self._fleet()
        if self.limit:
            raise UserError("--limit needs -i INVENTORY")
        plan = self.make_plan()
        if self.as_json:
            emit(render.render_json(plan.to_dict()))
        elif self.as_yaml:
            emit(render.render_yaml(plan.to_role_vars()))
        else:
            emit(render.render_report(plan))
        return 0

    def _fleet(self) -> int:
        from provision import fleet, render
        from provision.catalog import load_catalog
        from provision.inventory import gather_fleet

        if self.facts_file or self.ansible_facts_file:
            raise UserError("-i plans the inventory's hosts from their own facts: drop --facts/--ansible-facts")
        self.check_inventory()
        goals = self.goals()
        # The same inputs the role gets: each host's facts, probe and inventory variables
        # (kbuild_host_farm_address, kbuild_host_goals, ansible_host), planned by the same farm rules.
        found = gather_fleet(self.inventory, self.limit)
        from provision.cache_status import fleet_secrets_dir

        plans = fleet.plan_inventory(
            found.hosts, found.groups, goals, load_catalog(), cache_secrets_dir=fleet_secrets_dir(self.inventory)
        )
        if self.as_json:
            emit(render.render_json(fleet.fleet_json(plans)))
        elif self.as_yaml:
            emit(render.render_yaml({h: p.to_role_vars() for h, p in plans.items()}))
        else:
            emit(fleet.render_fleet(plans, found.groups))
        return 0


# --------------------------------------------------------------------------- facts


@Kprov.subcommand("facts")
class FactsCommand(KprovApp, SourceSwitches):
    """Print what kprov measured on this host (the input of every plan)"""

    as_json = cli.Flag("--json", help="As JSON, for kprov plan --facts FILE on another machine")

    def main(self, *args):
        if args:
            raise UserError(f"kprov facts takes no arguments (got '{args[0]}')")
        from provision import render

        facts = self.load_facts()
        if self.as_json:
            emit(render.render_json(facts.to_dict()))
        else:
            emit(render.render_yaml(facts.to_dict()))
        return 0


# --------------------------------------------------------------------------- env


@Kprov.subcommand("env")
class EnvCommand(KprovApp, PlanningSwitches):
    """Print shell exports for a kernel build: eval "$(kprov env)\""""

    def main(self, *args):
        if args:
            raise UserError(f"kprov env takes no arguments (got '{args[0]}')")
        from provision import render

        emit(render.render_env(self.make_plan()))
        return 0


# --------------------------------------------------------------------------- apply


@Kprov.subcommand("apply")
class ApplyCommand(KprovApp, PlanningSwitches, InventorySwitches):
    """Converge this host (or an inventory) to the plan with the kbuild_host Ansible role"""

    check = cli.Flag(["-C", "--check"], help="Show what would change; change nothing")
    diff = cli.Flag(["-D", "--diff"], help="Show the differences in the files that change")
    tags = cli.SwitchAttr(
        "--tags", Text("an area name"), list=True, argname="TAG", help="Only these areas (packages, zram, ...)"
    )
    skip_tags = cli.SwitchAttr(
        "--skip-tags", Text("an area name"), list=True, argname="TAG", help="Skip these areas"
    )
    verbose = cli.CountOf("--verbose", help="Every task's line; twice: Ansible's own output (repeat for more)")
    no_repair = cli.Flag(
        "--no-repair",
        help="An interrupted dpkg fails the run, naming the commands that repair it, instead of being repaired",
    )

    def main(self, *args):
        if args:
            raise UserError(f"kprov apply takes no arguments (got '{args[0]}')")
        if self.facts_file or self.ansible_facts_file:
            if self.inventory:
                raise UserError("-i applies to the inventory's hosts, planned from their own facts: drop --facts")
            raise UserError("kprov apply plans this host from its own facts: --facts is for kprov plan")
        self._explicit_ccache_dir = self.ccache_dir
        if not self.inventory and not self.ccache_dir and not self.ccache_private:
            # apply sets up one cache for every user of the host, like the role does on a fleet
            from provision.ansible_facts import DEFAULT_CCACHE_DIR

            self.ccache_dir = DEFAULT_CCACHE_DIR
        if self.inventory:
            self.check_inventory()
        goals = self.goals()  # bad switches first: exit 2 before anything is measured or run
        from provision.validate import check_area_tags

        tags, skip_tags = check_area_tags(self.tags, "--tags"), check_area_tags(self.skip_tags, "--skip-tags")
        if not self.check and os.geteuid() != 0:
            sudo = "sudo kprov apply -i INVENTORY" if self.inventory else "sudo kprov apply"
            raise UserError(f"kprov apply changes the system: run it as root ({sudo}), or use --check")
        from provision import runner

        if self.inventory:
            role_vars = None
        else:
            plan = self.make_plan()
            _store_secrets(plan, self.check)
            role_vars, goals = plan.to_role_vars(), None
        result = runner.apply(
            role_vars=role_vars,
            goals=goals,
            inventory=self.inventory,
            limit=self.limit,
            check=self.check,
            diff=self.diff,
            tags=tags,
            skip_tags=skip_tags,
            verbosity=self.verbose,
            repair=not self.no_repair,
        )
        return result.rc


def _store_secrets(plan: Plan, check: bool) -> None:
    """The store's users' secret files: made when missing (never overwritten, never printed); the
    paths to copy to each client are said once."""
    store = plan.ccache.store if plan.ccache.enabled else None
    if store is None:
        return
    from provision.cache_status import ensure_secret_file

    own = plan.ccache.remote.user if plan.ccache.remote else None
    for user in store.users:
        if check:
            if not os.path.exists(user.secret_file):
                _say(f"kprov: would create the store secret {user.secret_file} (--check creates nothing)")
            continue
        made = ensure_secret_file(user.secret_file, f"the secret of store user {user.name}")
        role = "writes" if user.write else "reads"
        if user.name != own:
            _say(
                f"kprov: store user {user.name} ({role}): copy {user.secret_file} to that host (mode 0600) and run "
                f"kprov apply --ccache-remote URL --ccache-remote-secret FILE --ccache-remote-user {user.name}"
                + (" --ccache-remote-write" if user.write else "") + (" (new secret)" if made else "")
            )


# --------------------------------------------------------------------------- cache


@Kprov.subcommand("cache")
class CacheCommand(KprovApp):
    """The shared compile cache on this host (kprov cache status)"""

    def main(self, *args):
        if args:
            raise UserError(f"kprov cache: unknown command '{args[0]}' (expected: status)")
        if not self.nested_command:
            raise UserError("kprov cache needs a command: status")


@CacheCommand.subcommand("status")
class CacheStatusCommand(KprovApp):
    """The local cache, the store this host uses (does it answer, how fast), hits, and what decides them"""

    as_json = cli.Flag("--json", help="As JSON")
    config = cli.SwitchAttr(
        "--config", Text("a file name"), argname="FILE",
        help="The client config file to read (default: $CCACHE_CONFIGPATH, else /etc/kprov/ccache-remote.conf)",
    )

    def main(self, *args):
        if args:
            raise UserError(f"kprov cache status takes no arguments (got '{args[0]}')")
        from provision import cache_status, render

        data = cache_status.status(self.config)
        emit(render.render_json(data) if self.as_json else cache_status.render_status(data))
        return 0


# --------------------------------------------------------------------------- calibrate


@Kprov.subcommand("calibrate")
class CalibrateCommand(KprovApp):
    """Measure a kernel tree on this host (per-job memory, CPU-seconds, the link) for kprov plan"""

    tree = cli.SwitchAttr(
        "--tree", Text("a directory"), argname="PATH", help="The kernel source tree to measure (required)"
    )
    build_dir = cli.SwitchAttr(
        "--build-dir", Text("a directory"), argname="PATH",
        help="A previous build of this config (make O=) whose vmlinux is relinked and measured",
    )
    target = cli.SwitchAttr("--target", cli.Set(*TARGETS), help="Kernel config target (default: as kprov plan)")
    compiler = cli.SwitchAttr("--compiler", cli.Set(*COMPILERS), default="auto", help="Compiler")
    debug_info = cli.SwitchAttr("--debug-info", cli.Set(*DEBUG_INFO), default="auto", help="Debug info")
    lto = cli.SwitchAttr("--lto", cli.Set(*LTO), default="auto", help="Link-time optimisation")
    minutes = cli.SwitchAttr(
        "--minutes", Whole(1, 600), default=5, argname="M", help="Time budget for the measurement"
    )
    output = cli.SwitchAttr("--output", Text("a file name"), argname="FILE", help="Also write the profile to FILE")

    def main(self, *args):
        if args:
            raise UserError(f"kprov calibrate takes no arguments (got '{args[0]}')")
        if self.tree is None:
            raise UserError("kprov calibrate needs --tree PATH: the kernel tree to measure")
        goals = Goals(
            target=self.target, compiler=self.compiler, debug_info=self.debug_info, lto=self.lto,
            build_dir=self.build_dir,
        )
        from provision import calibrate
        from provision.facts import gather

        facts = gather(tree=self.tree, build_dir=self.build_dir)
        try:
            result = calibrate.calibrate(facts, goals, float(self.minutes), self.output)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise EnvironmentProblem(f"kprov calibrate: {exc.strerror or exc}{where}") from None
        emit(calibrate.summary(result))
        return 0


# --------------------------------------------------------------------------- the role for Ansible users


@Kprov.subcommand("ansible-path")
class AnsiblePathCommand(KprovApp):
    """Print the directory holding the kbuild_host role, for ANSIBLE_ROLES_PATH / roles_path"""

    def main(self, *args):
        if args:
            raise UserError(f"kprov ansible-path takes no arguments (got '{args[0]}')")
        from provision.collection import roles_path

        emit(f"{roles_path()}\n")
        return 0


@Kprov.subcommand("collection")
class CollectionCommand(KprovApp):
    """Build the kbuild_host role as the Ansible collection kprov.kbuild (a tarball for ansible-galaxy)"""

    output = cli.SwitchAttr(
        "--output", Text("a directory"), argname="DIR", default=".", help="Where to write the tarball (default: .)"
    )

    def main(self, *args):
        if args:
            raise UserError(f"kprov collection takes no arguments (got '{args[0]}')")
        from pathlib import Path

        from provision.collection import FQCN, build

        tarball = build(Path(self.output))
        emit(f"{tarball}\ninstall: ansible-galaxy collection install {tarball}\nuse: - role: {FQCN}\n")
        return 0


def main() -> None:
    Kprov.run()


if __name__ == "__main__":
    main()
