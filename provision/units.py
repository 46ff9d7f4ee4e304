"""Byte units and how kprov writes sizes: ``human_bytes`` for every reason and table, and ccache's
own binary-unit syntax (``8Gi``) so ``ccache -p`` shows what was planned.
"""

from __future__ import annotations

GIB = 1 << 30


MIB = 1 << 20


def human_bytes(n: float | None) -> str:
    """kprov's one byte formatter: binary units as free(1), ccache and zramctl print them
    (``1.5 GiB``, ``512 MiB``, ``0 MiB``; below 1 MiB in KiB)."""
    if n is None:
        return "-"
    if abs(n) >= GIB:
        return f"{n / GIB:.1f} GiB"
    if abs(n) >= MIB or n == 0:
        return f"{n / MIB:.0f} MiB"
    return f"{n / 1024:.0f} KiB"


def ccache_size_string(size_bytes: int) -> str:
    """ccache's own size syntax, in binary units so ``ccache -p`` shows what was planned."""
    if size_bytes <= 0:
        return "0"
    mib = max(1, round(size_bytes / MIB))
    if mib % 1024 == 0:
        return f"{mib // 1024}Gi"
    return f"{mib}Mi"
