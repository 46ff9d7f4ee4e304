"""Turn a Plan into text: the readable report, shell exports, JSON and role-variable YAML.

Templates live in the top-level ``templates/`` directory (shipped in the wheel) and are rendered
with ``StrictUndefined``: a template that names a field the plan does not have fails loudly in the
tests instead of printing an empty line to a user.

Much of what a plan says comes from foreign text: host names, distro names, the CPU model and
paths from a facts file or an inventory. Every ``{{ ... }}`` of every template passes through
:func:`escaped` (the environment's ``finalize``), so a newline or a terminal escape sequence in a
host name is printed as ``\n`` or ``\x1b``, never acted on. Shell output is quoted with
:func:`shquote` and refuses control characters outright: an escaped value would be a wrong value.

The role-variable YAML (``kprov plan --yaml``, for ``host_vars/``) is read by Ansible, which
templates every string of a vars file when a play uses it: a ``{{ lookup('pipe', ...) }}`` in a
host name would run on the controller. Every string value there is tagged ``!unsafe`` (Ansible's
"data, never a template"), kprov's own text included, since the role never needs a value of the
plan templated; keys stay plain (Ansible does not template keys). The one exception is text that
YAML would read as another type and that holds no ``{`` (``''``, ``'123'``, ``'true'``): it is a
quoted plain string, because ansible-core 2.19 re-reads the type of an ``!unsafe`` scalar. So the
YAML is for Ansible's loader: a plain YAML loader does not know the tag.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from typing import TYPE_CHECKING, Any

from provision.errors import UserError, escaped, shown
from provision.model.plan import Plan
from provision.resources import templates_dir
from provision.rules.system import check_buildenv
from provision.units import human_bytes


def shquote(value: Any) -> str:
    return shlex.quote(str(value))


#: What a shell accepts after ``export``: anything else would be parsed as more shell.
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


if TYPE_CHECKING:
    import jinja2


@functools.cache
def environment() -> jinja2.Environment:
    # jinja2 and yaml are imported where they are used: `kprov plan --json` needs neither, and
    # start-up time is most of what a plan costs.
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # plain text and shell, never HTML
        finalize=escaped,  # every printed value: control characters shown as escapes, never acted on
    )
    env.filters["human_bytes"] = human_bytes
    env.filters["shquote"] = shquote
    env.filters["escaped"] = escaped
    return env


def render_template(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def render_report(plan: Plan) -> str:
    return render_template("report.txt.j2", plan=plan)


def render_env(plan: Plan) -> str:
    """``kprov env``: one ``export NAME=VALUE`` per line, for ``eval``. A name that is not a shell
    identifier or a value with a control character is refused: quoting keeps a newline inside the
    value, but a build environment has no business holding one."""

    for name, value in plan.env.items():
        if not isinstance(name, str) or not _SHELL_NAME.fullmatch(name):
            raise UserError(f"kprov env: {shown(name)} is not a shell variable name")
        if escaped(value) != str(value):
            raise UserError(f"kprov env: the value of {name} has control characters ({shown(value)})")
    return render_template("env.sh.j2", env=check_buildenv(plan.env, "kprov env"))


def render_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


#: Ansible's YAML tag for a string that is data, never a template.
UNSAFE_TAG = "!unsafe"


_YAML_STR = "tag:yaml.org,2002:str"


class _Key(str):
    """A mapping key on its way to YAML: written plain, never tagged."""


@functools.cache
def _role_vars_dumper() -> type:
    import yaml

    class RoleVarsDumper(yaml.SafeDumper):
        """SafeDumper that writes every string value as ``!unsafe '...'`` and keys as plain text."""

        def represent_mapping(self, tag: str, mapping: Any, flow_style: bool | None = None) -> yaml.MappingNode:
            items = mapping.items() if hasattr(mapping, "items") else mapping
            keyed = [(_Key(key) if isinstance(key, str) else key, value) for key, value in items]
            return super().represent_mapping(tag, keyed, flow_style)

        def represent_unsafe(self, text: str) -> yaml.ScalarNode:
            if "{" not in text and self.resolve(yaml.ScalarNode, text, (True, False)) != _YAML_STR:
                # Text YAML reads as another type unquoted ('', '123', 'true', 'null'): ansible-core
                # 2.19 resolves the type of an !unsafe scalar anew (!unsafe '' loads as None), so it
                # is written as a quoted string. Without a '{' it can be no template.
                return yaml.SafeDumper.represent_str(self, text)
            # single quotes where they can hold the text; the emitter falls back to double quotes
            # (with \x escapes) for control and non-ASCII characters
            return self.represent_scalar(UNSAFE_TAG, text, style="'")

    RoleVarsDumper.add_representer(str, RoleVarsDumper.represent_unsafe)
    RoleVarsDumper.add_representer(_Key, yaml.SafeDumper.represent_str)
    return RoleVarsDumper


def render_yaml(data: Any) -> str:
    """Role variables as YAML for Ansible's ``host_vars/``: every string value tagged ``!unsafe``."""
    import yaml

    return "---\n" + yaml.dump(
        data, Dumper=_role_vars_dumper(), sort_keys=False, default_flow_style=False, width=100
    )


def render_plain_yaml(data: Any) -> str:
    """Data as plain YAML for a reader (``kprov facts``): no Ansible tags."""
    import yaml

    return "---\n" + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
