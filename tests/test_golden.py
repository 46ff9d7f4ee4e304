"""kprov's outputs, byte for byte: ``kprov plan`` (text, --json, --yaml) and ``kprov env`` for
the suite's fixture hosts and synthetic ones under many goals, and the fleet table and JSON of a
distcc farm and of a shared compile cache (tests/golden/). A change to kprov's output is made on
purpose: regenerate with ``tests/golden/regen.py`` in the same commit and say why there."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))

from outputs import OUT, all_outputs  # noqa: E402


def test_every_output_is_byte_for_byte_the_recorded_one():
    produced = dict(all_outputs())
    recorded = {p.name for p in OUT.iterdir()}
    assert len(produced) >= 250
    assert sorted(produced) == sorted(recorded), "golden cases and recorded files differ: run tests/golden/regen.py"
    changed = []
    for name, text in produced.items():
        want = (OUT / name).read_text()
        if text != want:
            diff = difflib.unified_diff(want.splitlines(), text.splitlines(), "recorded", "now", lineterm="", n=1)
            changed.append(f"{name}:\n" + "\n".join(list(diff)[:30]))
    assert not changed, f"{len(changed)} outputs changed:\n" + "\n\n".join(changed[:5])


def test_the_cases_cover_the_shapes_the_layout_must_keep():
    names = {p.name for p in OUT.iterdir()}
    hosts = {n.split("__")[0] for n in names if "__" in n}
    assert len(hosts) >= 20
    assert {"fleet-farm.txt", "fleet-farm.json", "fleet-cache.txt", "fleet-cache.json"} <= names
