"""Fixed paths kprov uses on a host, named once."""

from __future__ import annotations

#: The shared compile cache of a host that ``kprov apply`` (or the role) sets up for every user.
SHARED_CCACHE_DIR = "/var/cache/ccache"
