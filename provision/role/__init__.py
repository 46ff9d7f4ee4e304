"""The kbuild_host role's side of kprov: what the role calls and what ships with it.

``backend`` is the one module the role's filter plugin imports (the plan of a host, the farm and
cache goals, every check of a role variable); ``checks`` judges a whole set of role variables;
``store_files`` writes the shared cache store's Redis ACL, htpasswd and remote_storage lines;
``secrets`` reads and makes the store's secret files; ``collection`` builds the role as the
Ansible collection kprov.kbuild.

May import: the fleet, the tree, render, the planner, facts, model, rules and the base modules;
not apply (a sibling layer) nor the command line.
"""
