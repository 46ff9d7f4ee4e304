"""Pure checks of what users, facts files, inventories and role variables say, by domain.

``addresses`` (addresses and networks parsed, never compared as text; kprov's own list of
private ranges; allow lists and listen addresses; host names), ``names`` (account names, sizes,
versions, paths, package names, area tags), ``distcc`` (host specs), ``system`` (zram, sysctls,
the build environment), ``store`` (the shared cache store's URL, users and role variables).
Each check returns the canonical value or raises a one-line UserError. The role calls the same
checks through its filter plugin: a rule lives here once.

May import only the base modules (errors, units, paths, calibration, resources).
"""
