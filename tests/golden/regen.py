"""Write the golden outputs anew: ``.venv/bin/python tests/golden/regen.py``.

Run it only in a commit that changes kprov's output on purpose, and say why in that commit.
"""

from __future__ import annotations

import shutil

from outputs import OUT, all_outputs

if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    count = 0
    for name, text in all_outputs():
        (OUT / name).write_text(text)
        count += 1
    print(f"{count} golden outputs in {OUT}")
