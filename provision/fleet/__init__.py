"""A fleet's plans: every host of an inventory planned by the same planner, a distcc farm and a
shared compile cache that come out consistent.

``members`` is what the farm knows of a host (its address, its toolchain) and whether one host
can compile for another; ``farm`` the farm's rules (who allows whom, listen addresses, host
limits, /etc/hosts); ``hostvars`` reads Ansible's hostvars into farm and cache goals (the role's
filter and ``kprov plan -i`` both use it); ``host`` plans one Ansible-managed host; ``plan`` plans
every host; ``table`` is the fleet table and JSON.

Pure: it names the secret files a plan needs and never writes them (the command layer and the
role's backend do). May import: render, the planner, facts (to read facts it is handed), model,
rules and the base modules.
"""
