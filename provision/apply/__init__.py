"""Effects on hosts through Ansible: ``kprov apply`` and the inventory.

``converge`` is kprov apply (checks before Ansible starts, the one-apply lock, the run, a failed
run as one line); ``runner`` runs a playbook through ansible-runner with extra vars marked unsafe;
``ansible_env`` is the environment and extra vars Ansible gets; ``inventory`` reads an inventory's
hosts, groups and facts; ``failures`` names the cause of a failed task; ``locking`` holds the lock
and ties ansible-playbook's life to kprov's; ``progress`` prints the run; ``runs`` keeps the
artifacts; ``checks`` refuses a path that is not root's or a full disk before anything runs;
``trust`` refuses an inventory that anyone but root or the running user could change (an
inventory is code to Ansible).

May import: facts, model, rules and the base modules. Never the planner, the fleet, the tree or
render: apply is handed the role variables a plan made (``Plan.to_role_vars()``), it never plans.
"""
