"""kprov: measure a Linux kernel build host, plan -j/zram/ccache/distcc, and apply the plan."""

__version__ = "0.1.0"
