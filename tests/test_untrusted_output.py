"""Foreign text in what kprov hands to Ansible stays text: ``kprov plan --yaml`` (and ``kprov plan
-i --yaml``) writes every string value as ``!unsafe``, so a ``{{ lookup('pipe', ...) }}`` in a host
name, a CPU model, a mount point or a tree path is never run when a play uses the variables.

The attack is played for real: a facts file (and an Ansible facts file, and an inventory's
gathered facts) carries a template that would ``touch`` a marker file; the YAML goes into
``host_vars/`` of a temporary inventory and ``ansible-playbook`` (local connection, no facts
gathered) renders the variables, checks them against the role's argument spec and writes them
out. The markers must not exist, the template text must come through as written, and the values
must be the plan's own (the JSON plan, the role variables).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from provision import render
from provision.apply.inventory import InventoryHost
from provision.facts.catalog import load_catalog
from provision.fleet.plan import plan_inventory
from provision.model.goals import Goals
from provision.resources import role_dir

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
BIN = Path(sys.executable).parent
KPROV = BIN / "kprov"
GOOD_FACTS = FIXTURES / "laptop-8c-16g.json"
GOOD_ANSIBLE = FIXTURES / "ansible" / "debian12-localhost-flat.json"
SETUP = FIXTURES / "ansible" / "debian12-localhost-setup.json"
PROBE = FIXTURES / "ansible" / "debian12-localhost-probe.json"


# --------------------------------------------------------------------------- reading the YAML


class Unsafe(str):
    """A string the YAML tagged ``!unsafe``."""


class UnsafeLoader(yaml.SafeLoader):
    """SafeLoader that knows Ansible's ``!unsafe`` tag (and nothing else of Ansible's)."""


UnsafeLoader.add_constructor("!unsafe", lambda loader, node: Unsafe(loader.construct_scalar(node)))


def load(text: str):
    return yaml.load(text, Loader=UnsafeLoader)  # noqa: S506 - a SafeLoader with one more tag


_RESOLVER = yaml.resolver.Resolver()


def could_be_template(text: str) -> bool:
    """Text that must be tagged: it has a ``{``, or YAML reads it as a string anyway. (Text YAML
    reads as another type - '', '123', 'true' - is written quoted and plain: ansible-core 2.19
    re-reads an ``!unsafe`` scalar's type, and such text cannot hold a template.)"""
    return "{" in text or _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == "tag:yaml.org,2002:str"


def untagged(value, where: str = "") -> list[str]:
    """Where in ``value`` a string value that could be a template is not tagged ``!unsafe``
    (mapping keys are not values)."""
    if isinstance(value, str):
        return [] if isinstance(value, Unsafe) or not could_be_template(value) else [where or "."]
    if isinstance(value, dict):
        return [w for k, v in value.items() for w in untagged(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [w for i, v in enumerate(value) for w in untagged(v, f"{where}[{i}]")]
    return []


def plain(value):
    """``value`` with the tags dropped: what Ansible hands a task."""
    return json.loads(json.dumps(value))


def strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def kprov(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(KPROV), *args], capture_output=True, text=True, timeout=300, check=False)


# --------------------------------------------------------------------------- the YAML itself


TRICKY = [
    "{{ lookup('pipe', 'touch /nonexistent/x') }}",
    "{% raw %}x{% endraw %}",
    "it's \"quoted\"",
    "two\nlines",
    "trailing space ",
    " leading",
    "esc\x1b[31m and bell\x07",
    "h\u00f6st \u0663",
    "",
    "123",
    "0x1f",
    "true",
    "null",
    "~",
    "- item",
    "key: value",
    "# comment",
    "!unsafe 'nested'",
    "*alias",
    "&anchor x",
    "%YAML",
    "@at",
    "`tick`",
    "a\u2028b\u202e",
    "bad\udcffbyte",
]


def test_every_string_value_is_unsafe_keys_stay_plain_and_the_rest_keeps_its_type():
    data = {
        "kbuild_host_plan": {"host": {"hostname": TRICKY[0], "n": 3, "on": True, "off": None, "f": 1.5}},
        "kbuild_host_list": TRICKY,
        "kbuild_host_empty": {},
        "kbuild_host_none": [],
        "host one": {"kbuild_host_x": "y"},
    }
    text = render.render_yaml(data)
    assert text.startswith("---\n")
    assert text.isascii()  # non-ASCII and control characters are escapes inside double quotes
    assert not any(c in text for c in "\x1b\x07\u2028\u202e")
    loaded = load(text)
    assert untagged(loaded) == []
    assert loaded == data  # the same values: no string lost a character, no number became text
    assert all(type(k) is str for k in loaded)  # keys are not tagged
    assert type(loaded["kbuild_host_plan"]["host"]["n"]) is int
    assert loaded["kbuild_host_plan"]["host"]["on"] is True and loaded["kbuild_host_plan"]["host"]["off"] is None
    assert "hostname: !unsafe '{{ lookup(''pipe'', ''touch /nonexistent/x'') }}'" in text


def test_a_plain_yaml_loader_refuses_the_tag():
    """The YAML is for Ansible's loader: a plain one must not quietly read ``!unsafe`` as text."""
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.safe_load(render.render_yaml({"kbuild_host_x": "y"}))


def test_plain_yaml_has_no_tags():
    data = {"hostname": "laptop", "cpus": 8, "disks": [{"mount": "/"}]}
    assert render.render_plain_yaml(data) == "---\n" + yaml.safe_dump(
        data, sort_keys=False, default_flow_style=False, width=100
    )


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.text() | st.integers() | st.booleans() | st.none(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12))
def test_any_value_round_trips_with_every_string_tagged(value):
    text = render.render_yaml({"kbuild_host_v": value})
    assert text.isascii()
    loaded = load(text)
    assert untagged(loaded) == []
    assert loaded == {"kbuild_host_v": value}


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_ansible_reads_every_string_as_not_a_template(value):
    from ansible.parsing.yaml.loader import AnsibleLoader
    from ansible.template import is_trusted_as_template

    loaded = yaml.load(render.render_yaml({"kbuild_host_v": [value]}), Loader=AnsibleLoader)  # noqa: S506
    (got,) = loaded["kbuild_host_v"]
    assert isinstance(got, str) and got == value  # '' stays '', '123' stays text
    assert not is_trusted_as_template(got) or not could_be_template(value)
    if "{" in value:
        assert not is_trusted_as_template(got)


@pytest.mark.parametrize("text", ["", "123", "1.5", "true", "no", "null", "~", "2024-01-01", "0x1f", ".inf", "<<"])
def test_text_yaml_would_read_as_another_type_stays_text_in_ansible(text):
    """ansible-core 2.19 resolves an ``!unsafe`` scalar's type anew (``!unsafe ''`` is None there):
    such text is written quoted and untagged, and Ansible reads the very string back."""
    from ansible.parsing.yaml.loader import AnsibleLoader

    rendered = render.render_yaml({"kbuild_host_v": text})
    assert "!unsafe" not in rendered
    assert yaml.load(rendered, Loader=AnsibleLoader) == {"kbuild_host_v": text}  # noqa: S506
    assert isinstance(yaml.load(rendered, Loader=AnsibleLoader)["kbuild_host_v"], str)  # noqa: S506


# --------------------------------------------------------------------------- a real play


def marker(tmp_path: Path, name: str) -> str:
    """A template that creates ``marker-NAME`` when it runs; no spaces (a tab parts the shell's
    words) and no capitals, so a fact kprov normalises (a distro id: lower case, spaces to
    dashes) keeps it whole."""
    return f"{{{{lookup('pipe','touch\t{tmp_path}/marker-{name}')}}}}"


#: Fields of a kprov facts file that reach the plan as text (dotted paths, list index as a digit).
FACTS_FIELDS = {
    "hostname": "hostname",
    "arch": "arch",
    "cpu-model": "cpu.model",
    "mount": "disks.0.mount",
    "gcc-version": "toolchain.gcc",
    "virtualization": "virtualization",
    "distro-id": "distro.id",
    "zram-device": "zram.devices_in_use.0",
    "group-member": "ccache_group_members.0",
}


#: The kernel tree's path, in a facts file of its own (a tree moves the build off the disk whose
#: mount point carries a template above).
TREE_FIELDS = {"tree": "tree.path"}


#: Setup facts of an Ansible facts file that reach the plan as text.
ANSIBLE_FIELDS = {
    "a-hostname": "ansible_hostname",
    "a-processor": "ansible_processor.2",
    "a-distribution": "ansible_distribution",
    "a-architecture": "ansible_architecture",
}


def _put(data, dotted: str, value) -> None:
    *parents, last = (int(k) if k.isdigit() else k for k in dotted.split("."))
    for key in parents:
        data = data[key]
    if isinstance(data, list) and last == len(data):
        data.append(value)
    else:
        data[last] = value


def hostile_facts(tmp_path: Path, fields: dict[str, str]) -> tuple[Path, dict[str, str]]:
    data = json.loads(GOOD_FACTS.read_text())
    data["zram"]["devices_in_use"] = []
    data["ccache_group_members"] = []
    if "tree" in fields:
        data["tree"] = {"path": "", "kernel_version": "6.1.0", "has_config": False, "config": {}, "modules": 0,
                        "min_versions": {}, "clean": True}
    planted = {}
    for name, dotted in fields.items():
        value = marker(tmp_path, name)
        if name == "tree":
            value = f"/srv/{value}"
        _put(data, dotted, value)
        planted[name] = value
    path = tmp_path / f"facts-{len(fields)}-{next(iter(fields))}.json"
    path.write_text(json.dumps(data))
    return path, planted


def hostile_ansible(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    data = json.loads(GOOD_ANSIBLE.read_text())
    planted = {}
    for name, dotted in ANSIBLE_FIELDS.items():
        planted[name] = marker(tmp_path, name)
        _put(data, dotted, planted[name])
    path = tmp_path / "ansible-facts.json"
    path.write_text(json.dumps(data))
    return path, planted


def hostile_fleet(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """What ``kprov plan -i INVENTORY --yaml`` writes for two hosts whose setup facts carry
    templates (the same composition as the command: each host's role variables under its name)."""
    setup = json.loads(SETUP.read_text())["ansible_facts"]
    probe = json.loads(PROBE.read_text())
    planted = {name: marker(tmp_path, name) for name in ("i-alpha-hostname", "i-beta-architecture", "i-beta-cpu")}
    alpha = dict(setup, ansible_hostname=planted["i-alpha-hostname"])
    beta = dict(setup, ansible_architecture=planted["i-beta-architecture"])
    beta_probe = json.loads(json.dumps(probe))
    beta_probe["cpu"]["model"] = planted["i-beta-cpu"]
    hosts = {"alpha": InventoryHost("alpha", alpha, probe), "beta": InventoryHost("beta", beta, beta_probe)}
    plans = plan_inventory(hosts, {"all": ["alpha", "beta"], "ungrouped": ["alpha", "beta"]}, Goals(), load_catalog())
    return render.render_yaml({h: p.to_role_vars() for h, p in plans.items()}), planted


def run_play(tmp_path: Path, host_vars: dict[str, str], names: list[str]) -> tuple[Path, str]:
    """ansible-playbook on localhost with ``host_vars`` (host name -> YAML): the role's argument
    spec checks the variables, and each host's plan, role variables and host name are rendered
    into files of the returned directory; the whole document of a host named ``fleet`` (the
    output of ``kprov plan -i``) too."""
    inv = tmp_path / "inventory"
    (inv / "host_vars").mkdir(parents=True)
    out = tmp_path / "rendered"
    out.mkdir()
    lines = []
    for host, text in host_vars.items():
        (inv / "host_vars" / f"{host}.yml").write_text(text)
        lines.append(f"{host} ansible_connection=local ansible_python_interpreter={sys.executable}")
    (inv / "hosts").write_text("\n".join(lines) + "\n")
    spec = role_dir() / "meta" / "argument_specs.yml"
    planned = [h for h in host_vars if h != "fleet"]
    play = [
        {
            "name": "Render kprov's role variables",
            "hosts": ":".join(planned),
            "gather_facts": False,
            "vars": {"names": names},
            "tasks": [
                {"name": "The role's own check of its variables", "ansible.builtin.validate_argument_spec": {
                    "argument_spec": f"{{{{ (lookup('ansible.builtin.file', '{spec}') | ansible.builtin.from_yaml)"
                                     ".argument_specs.main.options }}"}},
                {"ansible.builtin.copy": {"content": "{{ kbuild_host_plan | ansible.builtin.to_json }}",
                                          "dest": f"{out}/{{{{ inventory_hostname }}}}.plan.json"}},
                {"ansible.builtin.copy": {
                    "content": "{{ dict(names | zip(query('ansible.builtin.vars', *names))) | ansible.builtin.to_json }}",
                    "dest": f"{out}/{{{{ inventory_hostname }}}}.vars.json"}},
                {"ansible.builtin.copy": {"content": "{{ kbuild_host_plan.host.hostname }}",
                                          "dest": f"{out}/{{{{ inventory_hostname }}}}.hostname"}},
                {"ansible.builtin.debug": {"msg": "{{ kbuild_host_plan.host.hostname }}"}},
            ],
        },
    ]
    if "fleet" in host_vars:
        play.append({
            "name": "Render the fleet's document",
            "hosts": "fleet",
            "gather_facts": False,
            "tasks": [
                {"ansible.builtin.copy": {"content": "{{ {'alpha': alpha, 'beta': beta} | ansible.builtin.to_json }}",
                                          "dest": f"{out}/fleet.json"}},
                {"ansible.builtin.debug": {"msg": "{{ alpha.kbuild_host_plan.host.hostname }}"}},
            ],
        })
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    env = {
        **os.environ,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_REMOTE_TMP": str(tmp_path / "ansible-remote"),
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_CONFIG": str(tmp_path / "no-ansible.cfg"),
    }
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inv / "hosts"), str(playbook)],
                          capture_output=True, text=True, timeout=600, env=env, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return out, output


def test_templates_in_facts_are_never_run_when_a_play_renders_the_plan(tmp_path: Path):
    facts_file, from_facts = hostile_facts(tmp_path, FACTS_FIELDS)
    tree_file, from_tree = hostile_facts(tmp_path, TREE_FIELDS)
    ansible_file, from_ansible = hostile_ansible(tmp_path)
    fleet_yaml, from_fleet = hostile_fleet(tmp_path)
    sources = {"facts": ("--facts", str(facts_file)), "tree": ("--facts", str(tree_file)),
               "ansible": ("--ansible-facts", str(ansible_file))}
    planted = {"facts": from_facts, "tree": from_tree, "ansible": from_ansible, "fleet": from_fleet}
    yaml_text, json_plan = {"fleet": fleet_yaml}, {}
    for host, source in sources.items():
        as_yaml, as_json = kprov("plan", *source, "--yaml"), kprov("plan", *source, "--json")
        assert as_yaml.returncode == 0 and as_json.returncode == 0, as_yaml.stderr + as_json.stderr
        yaml_text[host], json_plan[host] = as_yaml.stdout, json.loads(as_json.stdout)
    loaded = {host: load(text) for host, text in yaml_text.items()}
    for host, doc in loaded.items():
        assert untagged(doc) == [], host
        # every planted template reached the YAML (else the play would prove nothing about it)
        for name, value in planted[host].items():
            assert any(value in s for s in strings(doc)), f"{name} never reached the plan"

    out, log = run_play(tmp_path, yaml_text, list(loaded["facts"]))

    ran = sorted(p.name for p in tmp_path.glob("marker-*"))
    assert ran == [], f"templates ran: {ran}"
    # the text came through as written, and the values are the plan's own
    for host in sources:
        assert json.loads((out / f"{host}.plan.json").read_text()) == json_plan[host]
        assert json.loads((out / f"{host}.vars.json").read_text()) == plain(loaded[host])
    assert (out / "facts.hostname").read_text() == from_facts["hostname"]
    assert (out / "ansible.hostname").read_text() == from_ansible["a-hostname"]
    assert json.loads((out / "fleet.json").read_text()) == plain(loaded["fleet"])
    assert plain(loaded["fleet"])["alpha"]["kbuild_host_plan"]["host"]["hostname"] == from_fleet["i-alpha-hostname"]
    assert json.dumps(from_facts["hostname"])[1:-1] in log  # the debug of a nested string shows the text


def test_a_benign_plan_is_the_same_through_ansible(tmp_path: Path):
    """Tagging changes nothing a play sees: the role variables of an ordinary host, rendered by
    Ansible, equal kprov's JSON plan and the role variables, ints and booleans included."""
    as_yaml = kprov("plan", "--facts", str(GOOD_FACTS), "--yaml")
    as_json = kprov("plan", "--facts", str(GOOD_FACTS), "--json")
    assert as_yaml.returncode == 0 and as_json.returncode == 0
    role_vars = load(as_yaml.stdout)
    out, _ = run_play(tmp_path, {"plain": as_yaml.stdout}, list(role_vars))
    assert json.loads((out / "plain.plan.json").read_text()) == json.loads(as_json.stdout)
    rendered = json.loads((out / "plain.vars.json").read_text())
    assert rendered == plain(role_vars)
    assert rendered["kbuild_host_zram_enabled"] is role_vars["kbuild_host_zram_enabled"]
    assert isinstance(rendered["kbuild_host_plan"]["jobs"]["value"], int)
