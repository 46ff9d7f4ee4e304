"""The switches that shape a plan, shared by ``kprov plan``, ``env`` and ``apply``: checked and
turned into Goals before any fact is read, and the facts source (this host, a facts file, an inventory).
"""

from __future__ import annotations

import os
import stat

from plumbum import cli

from provision.cli.app import Text, Whole, say_line
from provision.errors import UserError
from provision.model.facts import HostFacts
from provision.model.goals import Goals, HostEntry
from provision.model.plan import Plan
from provision.model.schema import COMPILERS, DEBUG_INFO, LTO, TARGETS
from provision.planner.common import MAX_BUILDS_TO_KEEP, MAX_JOBS


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
            from provision.facts.local import load_facts_file

            return load_facts_file(self.facts_file)
        if self.ansible_facts_file:
            from provision.facts.ansible import load_ansible_facts_file

            return load_ansible_facts_file(self.ansible_facts_file)
        from provision.facts.local import gather

        return gather(tree=self.tree, build_dir=self.build_dir, ccache_dir=self.ccache_dir)


class PlanningSwitches(SourceSwitches):
    """The switches that shape a plan; `plan`, `env` and `apply` all take them."""

    target = cli.SwitchAttr("--target", cli.Set(*TARGETS), help="Kernel config target")
    compiler = cli.SwitchAttr("--compiler", cli.Set(*COMPILERS), default="auto", help="Compiler")
    debug_info = cli.SwitchAttr("--debug-info", cli.Set(*DEBUG_INFO), default="auto", help="Debug info")
    lto = cli.SwitchAttr("--lto", cli.Set(*LTO), default="auto", help="Link-time optimisation")
    arch = cli.SwitchAttr(
        "--arch", Text("a kernel architecture such as arm64"), argname="ARCH",
        help="Build for this kernel ARCH (arm64, arm, riscv, powerpc, s390, mips, x86, ...; aarch64 and other "
        "uname -m names are accepted): a cross build, with the distro's cross toolchain or clang",
    )
    for_other_machine = cli.Flag(
        "--for-other-machine", help="The kernel is not for this host (no localmodconfig advice)"
    )
    jobs = cli.SwitchAttr("--jobs", Whole(1, MAX_JOBS), argname="N", help="Force make -jN")
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
    source_root = cli.SwitchAttr(
        "--source-root", Text("a directory"), argname="PATH",
        help="Where this host's users keep their kernel trees (ccache base_dir for every user; default /home)",
    )
    ccache_group_add = cli.SwitchAttr(
        "--ccache-group-add", Text("a user name"), list=True, argname="USER",
        help="Add this existing user to the shared ccache's group: it can then affect every build (repeat)",
    )
    ccache_private = cli.Flag(
        "--ccache-private", help="No shared ccache directory or group: every user keeps ccache's own default"
    )
    builds_to_keep = cli.SwitchAttr(
        "--builds-to-keep", Whole(1, MAX_BUILDS_TO_KEEP), default=2, argname="N", help="Builds ccache should hold"
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

        from provision.rules.names import check_user_name

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
        from provision.model.goals import CacheRemoteGoal, CacheUser
        from provision.planner.shared_cache import local_secret_file, own_user_name
        from provision.rules.store import (
            check_store_client,
            check_store_url,
            check_store_user,
        )

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
            from provision.role.secrets import check_secret_file

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
        from provision.rules.addresses import parse_allow, parse_ip
        from provision.rules.distcc import parse_distcc_host
        from provision.rules.names import check_owned_dir, check_source_root, parse_size

        from provision.rules.names import kernel_arch

        arch = None if self.arch is None else kernel_arch(self.arch, "--arch")
        if self.ccache_dir is not None:
            # by its path now, before any fact is read; what this host has there, once planned
            check_owned_dir(self.ccache_dir, "--ccache-dir")
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
            arch=arch,
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
            source_root=None if self.source_root is None else check_source_root(self.source_root, "--source-root"),
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
        return self.plan_with_facts()[1]

    def plan_with_facts(self) -> tuple[HostFacts, Plan]:
        """The facts read and the plan made from them (with --tree: its evaluated .config)."""
        from provision.facts.catalog import load_catalog
        from provision.planner import plan

        goals = self.goals()
        facts = self.load_facts()
        tree_eval = None
        if facts.tree is not None and facts.source == "local":
            # the planned target's real .config, evaluated in a scratch O= (seconds), and a
            # calibration profile of it when one exists
            from provision.tree.kconfig import tree_evaluation

            tree_eval = tree_evaluation(facts, goals, say=lambda line: say_line(f"kprov: {line}"))
        planned = plan(facts, goals, load_catalog(), tree_eval)
        if facts.source == "local":
            self._check_ccache_dir_here(planned)
        return facts, planned

    def _check_ccache_dir_here(self, planned: Plan) -> None:
        """The shared ccache directory as this host has it now (the role makes it root:kbuild 2775):
        never a user's home, a directory everyone may write, or one holding other files."""
        c = planned.ccache
        if not c.enabled or c.private:
            return
        from provision.facts.local import found_dir
        from provision.rules.names import check_found_dir

        found = found_dir(c.dir)
        if found is not None:
            explicit = getattr(self, "_explicit_ccache_dir", self.ccache_dir) is not None
            where = "--ccache-dir" if explicit else "the ccache directory"
            check_found_dir(found.path, found.kind, found.world_writable, found.home_of, where)


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
        host list such as ``web1,web2,``.) Ansible runs an inventory as code: one that anyone but
        root or the running user could change is refused (provision.apply.trust)."""
        from provision.apply.trust import check_inventory_trusted

        try:
            mode = os.stat(self.inventory).st_mode
        except (OSError, ValueError):
            return
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise UserError(f"-i {self.inventory}: not a regular file or a directory")
        check_inventory_trusted(self.inventory)
