"""A kernel tree: what its Kconfig really produces and what its builds really cost.

``kconfig`` evaluates the planned target's ``.config`` in a scratch ``O=`` (Kbuild is code: it
runs the tree's make); ``calibrate`` measures compile jobs, the link and the time on the user's
own tree (``kprov calibrate``), with ``sampling`` choosing and running the units and ``profiles``
keeping the measured profile. ``ownership`` decides whose code a tree is (and the owner's scratch
directories), ``sandbox`` runs it as that user under one deadline in one process group.

May import: render, the planner (the plan whose config it evaluates), facts, model, rules and the
base modules.
"""
