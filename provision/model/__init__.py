"""kprov's data: frozen dataclasses with ``to_dict()``/``from_dict()`` and a schema number.

``schema`` is the shared machinery (bounds and checks a field must pass, (de)serialising);
``facts`` what a host is (HostFacts) and what a tree's Kconfig and calibration say; ``goals``
what the user asks for (Goals, /etc/hosts entries, cache users); ``plan`` the plan and its parts,
with ``Plan.to_role_vars()`` for the role.

May import: rules (a field's check) and the base modules.
"""
