"""Turn a Plan into text: the readable report, shell exports, JSON and role-variable YAML.

Templates live in the top-level ``templates/`` directory (shipped in the wheel) and are rendered
with ``StrictUndefined``: a template that names a field the plan does not have fails loudly in the
tests instead of printing an empty line to a user.
"""

from __future__ import annotations

import functools
import json
import shlex
from typing import TYPE_CHECKING, Any

from provision.model import GIB, MIB, Plan
from provision.resources import templates_dir


def human_bytes(n: int | float | None) -> str:
    """1.5 GiB, 512 MiB: binary units, the ones free(1), ccache and zramctl print."""
    if n is None:
        return "-"
    n = float(n)
    if n >= GIB:
        return f"{n / GIB:.1f} GiB"
    if n >= MIB:
        return f"{n / MIB:.0f} MiB"
    return f"{n / 1024:.0f} KiB"


def shquote(value: Any) -> str:
    return shlex.quote(str(value))


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
    )
    env.filters["human_bytes"] = human_bytes
    env.filters["shquote"] = shquote
    return env


def render_template(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def render_report(plan: Plan) -> str:
    return render_template("report.txt.j2", plan=plan)


def render_env(plan: Plan) -> str:
    return render_template("env.sh.j2", plan=plan, env=plan.env)


def render_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def render_yaml(data: Any) -> str:
    import yaml

    return "---\n" + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
