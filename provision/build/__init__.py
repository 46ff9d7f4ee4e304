"""``kprov build``: a real kernel build, run as the invoking user, watched and recorded.

``phases`` reads Kbuild's own step lines (``  CC      kernel/fork.o``) into the build's phases
and its compile units; ``sampler`` measures memory while make runs (the process tree's RSS and
swap, each compile job's own peak, the host's swap, zram and memory pressure); ``record`` is the
versioned record of one build (JSON lines under the XDG state directory) that ``kprov history``
lists; ``run`` starts make in a process group of its own, shows one status line on a terminal
(plain lines otherwise), passes make's output through and names an OOM kill; ``plot`` draws a
build as SVG.

May import: render, the planner, facts, model, rules and the base modules; not apply, role, fleet
or tree (siblings or above).
"""
