"""The ``kprov`` command line: plan, facts, env, apply.

Every error kprov knows about is a :class:`KprovError`; the application catches only that, prints
``kprov: <one line>`` on stderr and exits 2 (bad input) or 1 (the host or Ansible said no). Bad
switches from plumbum itself become the same one-line error instead of a help dump.

``kprov plan`` must stay fast and never import ansible_runner: the runner and the inventory code
are imported inside the subcommands that need them.
"""

from __future__ import annotations

import re
import sys

from plumbum import cli
from plumbum.cli.application import ShowCompletion, ShowHelp, ShowHelpAll, ShowVersion
from plumbum.cli.switches import SwitchError

import provision
from provision.errors import KprovError, UserError
from provision.model import COMPILERS, DEBUG_INFO, LTO, TARGETS, Goals, HostEntry, HostFacts, Plan


_BAD_ARGUMENT = re.compile(r"Argument of (\w+) expected to be (.+?), not '(.*?)'")


def _switch_message(exc: SwitchError) -> str:
    """plumbum names the attribute ("Argument of zram_percent ..."): name the switch instead."""
    text = " ".join(str(exc).split())
    match = _BAD_ARGUMENT.search(text)
    if match:
        name, expected, value = match.groups()
        return f"--{name.replace('_', '-')}: '{value}' is not valid (expected {expected})"
    return text


class KprovApp(cli.Application):
    """plumbum Application that reports KprovError (and switch errors) as one line."""

    @classmethod
    def run(cls, argv=None, *, exit=True):  # noqa: A002 - plumbum's signature
        try:
            return super().run(argv, exit=exit)
        except KprovError as exc:
            print(f"kprov: {exc.message}", file=sys.stderr)
            if exit:
                sys.exit(exc.exit_code)
            return None, exc.exit_code
        except KeyboardInterrupt:
            print("kprov: interrupted", file=sys.stderr)
            if exit:
                sys.exit(130)
            return None, 130

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
            self.help()
            return 2
        return 0


# --------------------------------------------------------------------------- shared switches


class SourceSwitches:
    """Where the facts come from: this host (default), a facts file, or an inventory."""

    facts_file = cli.SwitchAttr(
        "--facts", str, argname="FILE", help="Plan for the host described by FILE (kprov facts --json)"
    )
    ansible_facts_file = cli.SwitchAttr(
        "--ansible-facts", str, argname="FILE",
        help="Plan for the host described by Ansible setup facts (ansible -m setup output)",
    )
    tree = cli.SwitchAttr(
        "--tree", str, argname="PATH", help="The kernel source tree to build (reads its Makefile, .config, changes.rst)"
    )
    build_dir = cli.SwitchAttr("--build-dir", str, argname="PATH", help="Out-of-tree build directory (make O=)")
    ccache_dir = cli.SwitchAttr("--ccache-dir", str, argname="PATH", help="ccache directory")

    def load_facts(self) -> HostFacts:
        if self.facts_file and self.ansible_facts_file:
            raise UserError("--facts and --ansible-facts are exclusive: name one facts file")
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
    jobs = cli.SwitchAttr("--jobs", cli.Range(1, 4096), argname="N", help="Force make -jN")
    zram_on = cli.Flag("--zram", help="Force zram swap on")
    zram_off = cli.Flag("--no-zram", help="Force zram swap off")
    zram_percent = cli.SwitchAttr(
        "--zram-percent", int, argname="P", help="zram device size, percent of RAM (1..200)"
    )
    zram_algorithm = cli.SwitchAttr(
        "--zram-algorithm", str, argname="ALGO", help="zram compressor (one the kernel offers)"
    )
    ccache_on = cli.Flag("--ccache", help="Force ccache on")
    ccache_off = cli.Flag("--no-ccache", help="Force ccache off")
    ccache_size = cli.SwitchAttr("--ccache-size", str, argname="SIZE", help="ccache max_size, e.g. 8G, 512M")
    ccache_shared = cli.Flag("--ccache-shared", help="Share the cache between trees or machines")
    builds_to_keep = cli.SwitchAttr(
        "--builds-to-keep", cli.Range(1, 100), default=2, argname="N", help="Builds ccache should hold"
    )
    distcc_server = cli.Flag("--distcc-server", help="Run distccd on this host")
    allow = cli.SwitchAttr(
        "--allow", str, list=True, argname="CIDR", help="Network allowed to use distccd (repeat)"
    )
    allow_public = cli.Flag("--allow-public", help="Permit public ranges in --allow")
    listen = cli.SwitchAttr("--listen", str, argname="ADDRESS", help="Address distccd binds to")
    distcc_hosts = cli.SwitchAttr(
        "--distcc-hosts", str, list=True, argname="HOST[:PORT][/LIMIT]", help="distcc server to use (repeat)"
    )
    host_entries = cli.SwitchAttr(
        "--host-entry", str, list=True, argname="ADDRESS=NAME[,NAME]",
        help="/etc/hosts entry for a build host, in kprov's marked block (repeat)",
    )

    @staticmethod
    def _pair(on: bool, off: bool, name: str) -> bool | None:
        if on and off:
            raise UserError(f"--{name} and --no-{name} contradict each other: give one")
        return True if on else False if off else None

    def goals(self) -> Goals:
        from provision.validate import parse_size

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
            zram=self._pair(self.zram_on, self.zram_off, "zram"),
            zram_percent=self.zram_percent,
            zram_algorithm=self.zram_algorithm,
            ccache=self._pair(self.ccache_on, self.ccache_off, "ccache"),
            ccache_size_bytes=parse_size(self.ccache_size, "--ccache-size") if self.ccache_size else None,
            ccache_dir=self.ccache_dir,
            ccache_shared=self.ccache_shared,
            builds_to_keep=self.builds_to_keep,
            distcc_server=self.distcc_server,
            allow=tuple(self.allow),
            allow_public=self.allow_public,
            listen=self.listen,
            distcc_hosts=tuple(self.distcc_hosts),
            host_entries=tuple(entries),
        )

    def make_plan(self) -> Plan:
        from provision.catalog import load_catalog
        from provision.planner import plan

        goals = self.goals()
        facts = self.load_facts()
        return plan(facts, goals, load_catalog())


class InventorySwitches:
    inventory = cli.SwitchAttr(
        ["-i", "--inventory"], str, argname="INVENTORY", help="Ansible inventory: plan or apply every host in it"
    )
    limit = cli.SwitchAttr("--limit", str, argname="PATTERN", help="Only the inventory hosts that match")


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
            sys.stdout.write(render.render_json(plan.to_dict()))
        elif self.as_yaml:
            sys.stdout.write(render.render_yaml(plan.to_role_vars()))
        else:
            sys.stdout.write(render.render_report(plan))
        return 0

    def _fleet(self) -> int:
        from provision import fleet, render
        from provision.catalog import load_catalog
        from provision.inventory import gather_facts, inventory_groups

        if self.facts_file or self.ansible_facts_file:
            raise UserError("-i plans the inventory's hosts from their own facts: drop --facts/--ansible-facts")
        goals = self.goals()
        facts = gather_facts(self.inventory, self.limit)
        groups = inventory_groups(self.inventory)
        plans = fleet.plan_fleet(facts, groups, goals, load_catalog())
        if self.as_json:
            sys.stdout.write(render.render_json(fleet.fleet_json(plans)))
        elif self.as_yaml:
            sys.stdout.write(render.render_yaml({h: p.to_role_vars() for h, p in plans.items()}))
        else:
            sys.stdout.write(fleet.render_fleet(plans, groups))
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
            sys.stdout.write(render.render_json(facts.to_dict()))
        else:
            sys.stdout.write(render.render_yaml(facts.to_dict()))
        return 0


# --------------------------------------------------------------------------- env


@Kprov.subcommand("env")
class EnvCommand(KprovApp, PlanningSwitches):
    """Print shell exports for a kernel build: eval "$(kprov env)\""""

    def main(self, *args):
        if args:
            raise UserError(f"kprov env takes no arguments (got '{args[0]}')")
        from provision import render

        sys.stdout.write(render.render_env(self.make_plan()))
        return 0


# --------------------------------------------------------------------------- apply


@Kprov.subcommand("apply")
class ApplyCommand(KprovApp, PlanningSwitches, InventorySwitches):
    """Converge this host (or an inventory) to the plan with the kbuild_host Ansible role"""

    check = cli.Flag(["-C", "--check"], help="Show what would change; change nothing")
    diff = cli.Flag(["-D", "--diff"], help="Show the differences in the files that change")
    tags = cli.SwitchAttr("--tags", str, list=True, argname="TAG", help="Only these areas (packages, zram, ...)")
    skip_tags = cli.SwitchAttr("--skip-tags", str, list=True, argname="TAG", help="Skip these areas")
    verbose = cli.CountOf("--verbose", help="More Ansible detail (repeat)")

    def main(self, *args):
        if args:
            raise UserError(f"kprov apply takes no arguments (got '{args[0]}')")
        from provision import runner

        if self.inventory:
            if self.facts_file or self.ansible_facts_file:
                raise UserError("-i applies to the inventory's hosts, planned from their own facts: drop --facts")
            role_vars, goals = None, self.goals()
        else:
            if self.facts_file or self.ansible_facts_file:
                raise UserError("kprov apply plans this host from its own facts: --facts is for kprov plan")
            if not self.ccache_dir:
                # apply sets up one cache for every user of the host, like the role does on a fleet
                from provision.ansible_facts import DEFAULT_CCACHE_DIR

                self.ccache_dir = DEFAULT_CCACHE_DIR
            role_vars, goals = self.make_plan().to_role_vars(), None
        result = runner.apply(
            role_vars=role_vars,
            goals=goals,
            inventory=self.inventory,
            limit=self.limit,
            check=self.check,
            diff=self.diff,
            tags=tuple(self.tags),
            skip_tags=tuple(self.skip_tags),
            verbosity=self.verbose,
        )
        return result.rc


def main() -> None:
    Kprov.run()


if __name__ == "__main__":
    main()
