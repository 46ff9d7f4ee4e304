"""The commands that plan and apply: ``kprov plan``, ``facts``, ``env`` and ``apply``."""

from __future__ import annotations

import os

from plumbum import cli

from provision.cli.app import Kprov, KprovApp, Text, emit, say_line
from provision.cli.switches import InventorySwitches, PlanningSwitches, SourceSwitches
from provision.errors import UserError
from provision.model.plan import Plan
from provision.paths import SHARED_CCACHE_DIR


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
        from provision import render
        from provision.apply.inventory import gather_fleet
        from provision.facts.catalog import load_catalog
        from provision.fleet.plan import plan_inventory
        from provision.fleet.table import fleet_json, render_fleet

        if self.facts_file or self.ansible_facts_file:
            raise UserError("-i plans the inventory's hosts from their own facts: drop --facts/--ansible-facts")
        self.check_inventory()
        goals = self.goals()
        # The same inputs the role gets: each host's facts, probe and inventory variables
        # (kbuild_host_farm_address, kbuild_host_goals, ansible_host), planned by the same farm rules.
        found = gather_fleet(self.inventory, self.limit)
        from provision.fleet.hostvars import plans_secret_files
        from provision.role.secrets import ensure_secret_files, fleet_secrets_dir

        plans = plan_inventory(
            found.hosts, found.groups, goals, load_catalog(), cache_secrets_dir=fleet_secrets_dir(self.inventory)
        )
        # made after planning (a bad inventory makes none), each checked: never through a link,
        # only in the running user's own 0700 directories, never overwritten
        ensure_secret_files(plans_secret_files(plans))
        if self.as_json:
            emit(render.render_json(fleet_json(plans)))
        elif self.as_yaml:
            emit(render.render_yaml({h: p.to_role_vars() for h, p in plans.items()}))
        else:
            emit(render_fleet(plans, found.groups))
        return 0


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
            emit(render.render_plain_yaml(facts.to_dict()))
        return 0


@Kprov.subcommand("env")
class EnvCommand(KprovApp, PlanningSwitches):
    """Print shell exports for a kernel build: eval "$(kprov env)\""""

    def main(self, *args):
        if args:
            raise UserError(f"kprov env takes no arguments (got '{args[0]}')")
        from provision import render

        emit(render.render_env(self.make_plan()))
        return 0


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
            self.ccache_dir = SHARED_CCACHE_DIR
        if self.inventory:
            self.check_inventory()
        goals = self.goals()  # bad switches first: exit 2 before anything is measured or run
        from provision.rules.names import check_area_tags

        tags, skip_tags = check_area_tags(self.tags, "--tags"), check_area_tags(self.skip_tags, "--skip-tags")
        if not self.check and os.geteuid() != 0:
            sudo = "sudo kprov apply -i INVENTORY" if self.inventory else "sudo kprov apply"
            raise UserError(f"kprov apply changes the system: run it as root ({sudo}), or use --check")
        from provision.apply import converge

        if self.inventory:
            role_vars = None
        else:
            plan = self.make_plan()
            store_secrets(plan, self.check)
            role_vars, goals = plan.to_role_vars(), None
        result = converge.apply(
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


def store_secrets(plan: Plan, check: bool) -> None:
    """The store's users' secret files: made when missing (never overwritten, never printed); the
    paths to copy to each client are said once. With ``check`` nothing is made: the existing ones
    are checked as a real run would, the missing ones are said."""
    store = plan.ccache.store if plan.ccache.enabled else None
    if store is None:
        return
    from provision.role.secrets import ensure_secret_file, missing_secret_files

    own = plan.ccache.remote.user if plan.ccache.remote else None
    if check:
        for path in missing_secret_files((user.secret_file, user.name) for user in store.users):
            say_line(f"kprov: would create the store secret {path} (--check creates nothing)")
        return
    for user in store.users:
        made = ensure_secret_file(user.secret_file, f"the secret of store user {user.name}")
        role = "writes" if user.write else "reads"
        if user.name != own:
            say_line(
                f"kprov: store user {user.name} ({role}): copy {user.secret_file} to that host (mode 0600) and run "
                f"kprov apply --ccache-remote URL --ccache-remote-secret FILE --ccache-remote-user {user.name}"
                + (" --ccache-remote-write" if user.write else "") + (" (new secret)" if made else "")
            )
