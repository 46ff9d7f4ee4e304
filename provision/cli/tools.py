"""The other commands: ``kprov cache status``, ``calibrate``, ``ansible-path`` and ``collection``."""

from __future__ import annotations

from plumbum import cli

from provision.cli.app import Kprov, KprovApp, Text, Whole, emit
from provision.errors import EnvironmentProblem, UserError, escaped
from provision.model.goals import Goals
from provision.model.schema import COMPILERS, DEBUG_INFO, LTO, TARGETS


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
        from provision import render
        from provision.cli.cache_status import render_status, status

        data = status(self.config)
        emit(render.render_json(data) if self.as_json else render_status(data))
        return 0


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
        from provision.facts.local import gather
        from provision.tree.calibrate import calibrate, summary

        facts = gather(tree=self.tree, build_dir=self.build_dir)
        try:
            result = calibrate(facts, goals, float(self.minutes), self.output)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise EnvironmentProblem(f"kprov calibrate: {exc.strerror or exc}{where}") from None
        emit(summary(result))
        return 0


@Kprov.subcommand("ansible-path")
class AnsiblePathCommand(KprovApp):
    """Print the directory holding the kbuild_host role, for ANSIBLE_ROLES_PATH / roles_path"""

    def main(self, *args):
        if args:
            raise UserError(f"kprov ansible-path takes no arguments (got '{args[0]}')")
        from provision.role.collection import roles_path

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
        import shlex
        from pathlib import Path

        from provision.role.collection import FQCN, build

        tarball = build(Path(self.output))
        # the path is the user's text: a newline or an escape sequence in it is shown, never acted on
        emit(
            f"{escaped(tarball)}\ninstall: ansible-galaxy collection install {escaped(shlex.quote(str(tarball)))}\n"
            f"use: - role: {FQCN}\n"
        )
        return 0
