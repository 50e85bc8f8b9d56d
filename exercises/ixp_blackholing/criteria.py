"""Criteria of the exercise ixp_blackholing (see exercise.yaml)."""

import ipaddress

from testbed.assertions import assert_reachable, assert_unreachable
from testbed.exercise import criterion


@criterion("A drops traffic for You-h1 at its edge",
           hint="A has no discard route for 198.51.100.10/32: without the BLACKHOLE community "
                "(65535:666) a /32 is an ordinary, more-specific route, and A forwards the "
                "attack along it. Tag the /32 with blackhole.")
def attack_dropped_at_a(lab):
    address = ipaddress.ip_address(lab.address("You-h1"))
    covering = sorted((ipaddress.ip_network(prefix), via) for prefix, via in lab.kernel_routes("A").items()
                      if ":" not in prefix and address in ipaddress.ip_network(prefix))
    best = covering[-1] if covering else None
    assert best and best[1] == "blackhole", (
        f"at router A, the BGP route in the kernel for {address} is "
        f"{f'{best[0]} via {best[1]}' if best else 'missing'}, not a discard route")
    assert_unreachable(lab, "A", "You-h1")


@criterion("A still reaches You-h2",
           hint="A's packets to You-h2 are dropped too: you asked for more than the attacked "
                "address. Blackhole the /32 of the attacked host only.")
def rest_stays_up(lab):
    assert_reachable(lab, "A", "You-h2")
