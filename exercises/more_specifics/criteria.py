"""Criteria of the exercise more_specifics (see exercise.yaml)."""

import ipaddress

from testbed.exercise import assert_crosses, criterion


@criterion("R's packets to your hosts reach you",
           hint="R's traffic to your hosts (198.18.0.10) still ends at the hijacker: R's "
                "provider T2 prefers the hijacker's /22 (a customer's route). A longer prefix "
                "wins before any preference: announce more-specifics of your /22 that cover "
                "your hosts, no longer than /24.")
def r_reaches_you(lab):
    assert_crosses(lab, "R", "You", ["R", "T2", "T", "You"])


@criterion("R has a more-specific route of yours, originated by you",
           hint="no route more specific than your /22 reaches R: T refuses IPv4 prefixes "
                "longer than /24, as most networks do; announce /23s or /24s.")
def more_specifics_accepted(lab):
    yours = ipaddress.ip_network("198.18.0.0/22")
    found = {prefix: lab.names(route["as_path"]) for prefix, route in lab.loc_rib("R").items()
             if ":" not in prefix and ipaddress.ip_network(prefix).subnet_of(yours)
             and ipaddress.ip_network(prefix).prefixlen > 22}
    assert any(path and path[-1] == "You" for path in found.values()), (
        f"at router R, routes inside 198.18.0.0/22 longer than /22: {found or 'none'}")
