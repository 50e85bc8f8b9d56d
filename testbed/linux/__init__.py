"""What touches the Linux kernel: network namespaces, Mininet nodes and
their netlink configuration, kernel routes, the neighbour tables' limits and
page merging (KSM)."""
