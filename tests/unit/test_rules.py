"""The per-session policy language (testbed.bgp.rules) and communities
(testbed.bgp.community): parsing, with errors that name the field and the
value; prefix ranges; AS-path regular expressions; terms in order; route
origin validation (RFC 6811).

Routes are built by hand as the router holds them after import, so a term
can be run on them directly with ``run_terms``.
"""

from __future__ import annotations

import pytest

from testbed.bgp import Relationship, Route
from testbed.bgp.community import (
    BLACKHOLE,
    NO_ADVERTISE,
    NO_EXPORT,
    community_set,
    community_text,
    large_set,
    parse_community,
    parse_large,
)
from testbed.bgp.rules import (
    DEFAULT_POLICY,
    INVALID,
    NOT_FOUND,
    VALID,
    PolicyError,
    Roa,
    SessionPolicy,
    parse_policy,
    parse_range,
    parse_roas,
    rpki_state,
    run_terms,
)

PFX = "203.0.113.0/24"


def held(path=(65010, 65011), prefix=PFX, relationship=Relationship.CUSTOMER,
         neighbor="10.0.1.2", neighbor_asn=65010, **attrs) -> Route:
    """A route as a router holds it after import (neighbor fields set)."""
    return Route(prefix=prefix, next_hop=neighbor, as_path=path, neighbor=neighbor,
                 neighbor_asn=neighbor_asn, relationship=relationship, **attrs)


def terms(import_terms: list) -> tuple:
    return parse_policy({"import": import_terms}).import_terms


def matches(match: dict, route: Route, rpki=None, source=None) -> bool:
    (term,) = terms([{"match": match, "action": "accept"}])
    return term.match.matches(route, rpki, source)


# -- the whole policy -------------------------------------------------------------

def test_none_is_the_default_policy_and_a_policy_passes_through():
    assert parse_policy(None) is DEFAULT_POLICY
    policy = SessionPolicy(med=5)
    assert parse_policy(policy) is policy
    assert parse_policy({}) == SessionPolicy()


def test_the_documented_example_parses_to_every_knob():
    policy = parse_policy({
        "import": [
            {"match": {"as_path": "_64666_"}, "action": "reject"},
            {"match": {"prefix": ["203.0.113.0/24 le 24"]},
             "set": {"local_pref": 150, "add_communities": ["64500:1"]}}],
        "export": [{"match": {"community": ["64500:666"]}, "action": "reject"}],
        "max_prefix": 100, "prepend": 2, "med": 10,
        "announce": ["198.51.100.0/24"], "blackhole": True})
    first, second = policy.import_terms
    assert first.action == "reject" and first.match.as_path == "_64666_"
    assert second.action is None
    assert second.local_pref == 150
    assert second.add_communities == (64500 << 16 | 1,)
    assert [r.text for r in second.match.prefix] == ["203.0.113.0/24 le 24"]
    (export,) = policy.export_terms
    assert export.match.community == (64500 << 16 | 666,) and export.action == "reject"
    assert (policy.max_prefix, policy.prepend, policy.med) == (100, 2, 10)
    assert [r.text for r in policy.announce] == ["198.51.100.0/24"]
    assert policy.blackhole is True and policy.rov is False and policy.otc is False
    assert policy.local_pref is None


# Each row: the policy, and the exact message (field path first, then the value).
BAD_POLICIES = [
    ("not-a-dict", ["import"], "policy: ['import'] must be a dict"),
    ("unknown-key", {"imports": []}, ("policy: unknown key 'imports' (known: announce, blackhole, "
                                      "export, import, local_pref, max_prefix, med, otc, prepend, rov)")),
    ("import-not-list", {"import": {"action": "reject"}}, "policy.import: {'action': 'reject'} must be a list"),
    ("import-a-string", {"import": "reject"}, "policy.import: 'reject' must be a list"),
    ("term-not-dict", {"export": ["reject"]}, "policy.export[0]: 'reject' must be a dict with"),
    ("term-unknown-key", {"import": [{"action": "reject", "then": 1}]}, "policy.import[0]: unknown key 'then'"),
    ("term-empty", {"import": [{"action": "accept"}, {}]}, "policy.import[1]: the term neither changes"),
    ("action-bad", {"import": [{"action": "deny"}]}, "policy.import[0].action: 'deny' must be 'accept' or 'reject'"),
    ("match-not-dict", {"import": [{"match": "all", "action": "reject"}]}, "policy.import[0].match: 'all' must be a dict"),
    ("match-unknown", {"import": [{"match": {"aspath": "_1_"}, "action": "reject"}]},
     "policy.import[0].match: unknown key 'aspath'"),
    ("prefix-host-bits", {"import": [{"action": "accept"}, {"match": {"prefix": ["10.0.0.0/8", "10.0.0.1/8 le 24"]}, "action": "reject"}]},
     "policy.import[1].match.prefix[1]: '10.0.0.1/8 le 24': 10.0.0.1/8 has host bits set"),
    ("prefix-not-list", {"import": [{"match": {"prefix": "10.0.0.0/8"}, "action": "reject"}]},
     "policy.import[0].match.prefix: '10.0.0.0/8' must be a list"),
    ("prefix-le-short", {"import": [{"match": {"prefix": ["10.0.0.0/16 le 8"]}, "action": "reject"}]},
     "policy.import[0].match.prefix[0]: '10.0.0.0/16 le 8': lengths must satisfy 16 <= ge <= le <= 32"),
    ("prefix-le-long-v6", {"import": [{"match": {"prefix": ["2001:db8::/32 le 129"]}, "action": "reject"}]},
     "policy.import[0].match.prefix[0]: '2001:db8::/32 le 129': lengths must satisfy 32 <= ge <= le <= 128"),
    ("prefix-ge-over-le", {"import": [{"match": {"prefix": ["10.0.0.0/8 ge 24 le 16"]}, "action": "reject"}]},
     "policy.import[0].match.prefix[0]: '10.0.0.0/8 ge 24 le 16': lengths must satisfy"),
    ("prefix-garbage-word", {"import": [{"match": {"prefix": ["10.0.0.0/8 upto 24"]}, "action": "reject"}]},
     "policy.import[0].match.prefix[0]: '10.0.0.0/8 upto 24': after the prefix expected 'ge N' and/or 'le N'"),
    ("prefix-le-twice", {"import": [{"match": {"prefix": ["10.0.0.0/8 le 16 le 24"]}, "action": "reject"}]},
     "policy.import[0].match.prefix[0]: '10.0.0.0/8 le 16 le 24': after the prefix expected"),
    ("prefix-number", {"import": [{"match": {"prefix": [167772160]}, "action": "reject"}]},
     "policy.import[0].match.prefix[0]: 167772160 is not a prefix like"),
    ("as-path-not-text", {"import": [{"match": {"as_path": 64666}, "action": "reject"}]},
     "policy.import[0].match.as_path: 64666 must be a regular expression (text)"),
    ("as-path-bad-regex", {"import": [{"match": {"as_path": "_(64666_"}, "action": "reject"}]},
     "policy.import[0].match.as_path: '_(64666_' is not a regular expression"),
    ("origin-as-zero", {"import": [{"match": {"origin_as": [65001, 0]}, "action": "reject"}]},
     "policy.import[0].match.origin_as[1]: 0 must be a whole number in 1..4294967294"),
    ("origin-as-text", {"import": [{"match": {"origin_as": ["65001"]}, "action": "reject"}]},
     "policy.import[0].match.origin_as[0]: '65001' must be a whole number"),
    ("origin-as-not-list", {"import": [{"match": {"origin_as": 65001}, "action": "reject"}]},
     "policy.import[0].match.origin_as: 65001 must be a list"),
    ("community-bad", {"import": [{"match": {"community": ["64500:1", "64500:70000"]}, "action": "reject"}]},
     "policy.import[0].match.community[1]: community '64500:70000': 70000 does not fit in 16 bits"),
    ("community-word", {"import": [{"match": {"community": ["no-such"]}, "action": "reject"}]},
     "policy.import[0].match.community[0]: community 'no-such' must be ASN:value"),
    ("large-two-parts", {"import": [{"match": {"large_community": ["64500:1"]}, "action": "reject"}]},
     "policy.import[0].match.large_community[0]: large community '64500:1' must be three numbers"),
    ("large-too-big", {"import": [{"match": {"large_community": ["4294967296:1:2"]}, "action": "reject"}]},
     "policy.import[0].match.large_community[0]: large community '4294967296:1:2': 4294967296 does not fit in 32 bits"),
    ("family-5", {"import": [{"match": {"family": 5}, "action": "reject"}]}, "policy.import[0].match.family: 5 must be 4 or 6"),
    ("family-bool", {"import": [{"match": {"family": True}, "action": "reject"}]}, "policy.import[0].match.family: True must be 4 or 6"),
    ("rpki-word", {"import": [{"match": {"rpki": "unknown"}, "action": "reject"}]},
     "policy.import[0].match.rpki: 'unknown' must be 'valid', 'invalid' or 'not-found'"),
    ("learned-from-bad", {"export": [{"match": {"learned_from": ["peer", "transit"]}, "action": "reject"}]},
     "policy.export[0].match.learned_from[1]: 'transit' is not one of local, customer, peer"),
    ("from-asn-bool", {"export": [{"match": {"from_asn": [True]}, "action": "reject"}]},
     "policy.export[0].match.from_asn[0]: True must be a whole number"),
    ("set-not-dict", {"import": [{"set": ["local_pref", 1]}]}, "policy.import[0].set: ['local_pref', 1] must be a dict"),
    ("set-unknown", {"import": [{"set": {"weight": 1}}]}, "policy.import[0].set: unknown key 'weight'"),
    ("set-local-pref-on-export", {"export": [{"set": {"local_pref": 1}}]},
     "policy.export[0].set.local_pref: local_pref is set on import"),
    ("set-prepend-on-import", {"import": [{"set": {"prepend": 1}}]},
     "policy.import[0].set.prepend: prepending applies to export terms"),
    ("set-prepend-11", {"export": [{"set": {"prepend": 11}}]}, "policy.export[0].set.prepend: 11 must be a whole number in 0..10"),
    ("set-local-pref-negative", {"import": [{"set": {"local_pref": -1}}]},
     "policy.import[0].set.local_pref: -1 must be a whole number in 0..4294967295"),
    ("set-med-float", {"export": [{"set": {"med": 1.5}}]}, "policy.export[0].set.med: 1.5 must be a whole number"),
    ("set-add-community-bad", {"import": [{"set": {"add_communities": ["1:2:3"]}}]},
     "policy.import[0].set.add_communities[0]: community '1:2:3' must be ASN:value"),
    ("set-remove-word", {"import": [{"set": {"remove_communities": "every"}}]},
     "policy.import[0].set.remove_communities: 'every' must be a list"),
    ("set-remove-large-bad", {"import": [{"set": {"remove_large_communities": ["a:b:c"]}}]},
     "policy.import[0].set.remove_large_communities[0]: large community 'a:b:c': 'a' is not a number"),
    ("local-pref-text", {"local_pref": "high"}, "policy.local_pref: 'high' must be a whole number in 0..4294967295"),
    ("med-too-big", {"med": 2**32}, "policy.med: 4294967296 must be a whole number in 0..4294967295"),
    ("prepend-negative", {"prepend": -1}, "policy.prepend: -1 must be a whole number in 0..10"),
    ("max-prefix-zero", {"max_prefix": 0}, "policy.max_prefix: 0 must be a whole number in 1..10000000"),
    ("max-prefix-bool", {"max_prefix": True}, "policy.max_prefix: True must be a whole number"),
    ("announce-not-list", {"announce": "198.51.100.0/24"}, "policy.announce: '198.51.100.0/24' must be a list"),
    ("announce-bad", {"announce": ["198.51.100.0/24", "198.51.100.0/33"]}, "policy.announce[1]: '198.51.100.0/33'"),
    ("blackhole-text", {"blackhole": "yes"}, "policy.blackhole: 'yes' must be True or False"),
    ("rov-int", {"rov": 1}, "policy.rov: 1 must be True or False"),
    ("otc-none", {"otc": None}, "policy.otc: None must be True or False"),
]


@pytest.mark.parametrize("data,message", [pytest.param(d, m, id=i) for i, d, m in BAD_POLICIES])
def test_every_error_names_the_field_and_the_value(data, message):
    with pytest.raises(PolicyError) as caught:
        parse_policy(data)
    assert str(caught.value).startswith(message), str(caught.value)


def test_errors_name_the_caller_s_place():
    with pytest.raises(PolicyError, match=r"^policy of A\.export\[0\]\.action: 'drop'"):
        parse_policy({"export": [{"action": "drop"}]}, "policy of A")


def test_unknown_keys_of_mixed_types_are_reported_not_crashed_on():
    # A policy read from data can have keys of any type; sorting them for
    # the message must not raise TypeError instead of PolicyError.
    with pytest.raises(PolicyError, match="policy: unknown key"):
        parse_policy({1: "x", "imports": []})


def test_policy_error_is_a_value_error():
    assert issubclass(PolicyError, ValueError)


# -- prefix ranges ----------------------------------------------------------------

@pytest.mark.parametrize("text,ge,le", [
    ("10.0.0.0/8", 8, 8),
    ("10.0.0.0/8 le 24", 8, 24),
    ("10.0.0.0/8 ge 16", 16, 32),          # ge alone runs to the longest prefix
    ("10.0.0.0/8 ge 16 le 24", 16, 24),
    ("10.0.0.0/8 le 24 ge 16", 16, 24),    # either order
    ("2001:db8::/32 le 48", 32, 48),
    ("2001:db8::/32 ge 64", 64, 128),
    ("0.0.0.0/0 le 32", 0, 32),
])
def test_range_bounds(text, ge, le):
    prefix_range = parse_range(text)
    assert (prefix_range.ge, prefix_range.le, prefix_range.text) == (ge, le, text)


@pytest.mark.parametrize("text,prefix,inside", [
    ("10.0.0.0/8", "10.0.0.0/8", True),
    ("10.0.0.0/8", "10.1.0.0/16", False),          # a bare prefix is only itself
    ("10.0.0.0/8 le 24", "10.1.2.0/24", True),
    ("10.0.0.0/8 le 24", "10.1.2.0/25", False),
    ("10.0.0.0/8 le 24", "11.0.0.0/16", False),     # outside the network
    ("10.0.0.0/8 le 24", "0.0.0.0/0", False),       # covers the range, not inside it
    ("10.0.0.0/8 ge 16 le 24", "10.0.0.0/8", False),
    ("10.0.0.0/8 ge 16 le 24", "10.0.0.0/15", False),
    ("10.0.0.0/8 ge 16 le 24", "10.255.0.0/16", True),
    ("10.0.0.0/8 ge 16", "10.1.2.3/32", True),
    ("2001:db8::/32 le 48", "2001:db8:1::/48", True),
    ("2001:db8::/32 le 48", "2001:db9::/48", False),
    ("2001:db8::/32 le 128", "10.0.0.0/8", False),   # another family never matches
    ("0.0.0.0/0 le 32", "2001:db8::/32", False),
])
def test_range_contains(text, prefix, inside):
    assert parse_range(text).contains(prefix) is inside


# -- AS-path regular expressions ----------------------------------------------------

@pytest.mark.parametrize("pattern,path,found", [
    ("_64666_", (65010, 64666, 65011), True),
    ("_64666_", (65010, 64666), True),              # '_' is the end too
    ("_64666_", (64666,), True),                    # and the start
    ("_64666_", (65010, 646660), False),            # not a part of another AS number
    ("_64666_", (164666, 65010), False),
    ("64666", (164666,), True),                     # without '_' it is a plain substring
    ("^65010_", (65010, 65011), True),
    ("^65010_", (65011, 65010), False),
    ("_65011$", (65010, 65011), True),
    ("_65011$", (65011, 65010), False),
    ("_65010_65011_", (65010, 65011), True),        # adjacent ASes share one delimiter
    ("_65010_65011_", (65011, 65010), False),
    ("^$", (), True),                               # an empty path (locally originated)
    ("^$", (65010,), False),
    ("_(64512|64513)_", (65010, 64513), True),
    ("_6451[0-9]_", (65010, 64520), False),
])
def test_as_path_regex(pattern, path, found):
    assert matches({"as_path": pattern}, held(path=path)) is found


# -- the other match conditions --------------------------------------------------------

def test_an_empty_match_matches_every_route():
    assert matches({}, held())
    assert matches({}, Route(prefix=PFX, next_hop=None))


def test_conditions_must_all_hold():
    route = held(path=(65010, 65011), communities=("64500:1",))
    assert matches({"origin_as": [65011], "community": ["64500:1"]}, route)
    assert not matches({"origin_as": [65011], "community": ["64500:2"]}, route)
    assert not matches({"origin_as": [65010], "community": ["64500:1"]}, route)


def test_origin_as_is_the_last_as_of_the_path():
    assert matches({"origin_as": [65011, 65099]}, held(path=(65010, 65011)))
    assert not matches({"origin_as": [65010]}, held(path=(65010, 65011)))
    assert not matches({"origin_as": [65010]}, Route(prefix=PFX, next_hop=None))


def test_community_matches_any_listed():
    route = held(communities=("64500:1", "no-export"), large_communities=("64500:7:8",))
    assert matches({"community": ["64500:9", "64500:1"]}, route)
    assert matches({"community": ["no-export"]}, route)
    assert not matches({"community": ["64500:9"]}, route)
    assert matches({"large_community": ["64500:7:8"]}, route)
    assert not matches({"large_community": ["64500:8:7"]}, route)
    assert not matches({"community": ["64500:1"]}, held())


def test_family():
    assert matches({"family": 6}, held(prefix="2001:db8:5::/48"))
    assert not matches({"family": 6}, held())
    assert matches({"family": 4}, held())


def test_learned_from_and_from_asn_look_at_the_source():
    peer_route = held(relationship=Relationship.PEER, neighbor_asn=65020, path=(65020,))
    local = Route(prefix=PFX, next_hop=None)
    assert matches({"learned_from": ["peer", "provider"]}, peer_route)
    assert not matches({"learned_from": ["customer"]}, peer_route)
    assert matches({"learned_from": ["local"]}, local)
    assert not matches({"learned_from": ["customer"]}, local)
    assert matches({"from_asn": [65020]}, peer_route)
    assert not matches({"from_asn": [65020]}, local)
    # On export the route as sent has no neighbor: the source decides.
    outgoing = Route(prefix=PFX, next_hop="10.0.9.1", as_path=(65001, 65020))
    assert matches({"learned_from": ["peer"], "from_asn": [65020]}, outgoing, source=peer_route)
    assert not matches({"learned_from": ["peer"]}, outgoing, source=local)


def test_rpki_condition_asks_the_validator():
    roas = (Roa("203.0.113.0/24", 65011, 24),)

    def state(route):
        return rpki_state(roas, route.prefix, route.as_path[-1])

    assert matches({"rpki": "valid"}, held(path=(65010, 65011)), state)
    assert matches({"rpki": "invalid"}, held(path=(65010, 65012)), state)
    assert matches({"rpki": "not-found"}, held(prefix="198.51.100.0/24"), state)
    assert not matches({"rpki": "valid"}, held(path=(65010, 65012)), state)
    assert not matches({"rpki": "valid"}, held(), None)   # no validator: no match


# -- terms --------------------------------------------------------------------------

def test_terms_run_in_order_and_the_first_decision_wins():
    policy = terms([
        {"match": {"prefix": ["203.0.113.0/24"]}, "action": "reject"},
        {"action": "accept"},
    ])
    assert run_terms(policy, held())[1] == "reject"
    assert run_terms(policy, held(prefix="198.51.100.0/24"))[1] == "accept"
    swapped = (policy[1], policy[0])
    assert run_terms(swapped, held())[1] == "accept"


def test_a_term_without_action_modifies_and_goes_on():
    policy = terms([
        {"match": {"origin_as": [65011]}, "set": {"add_communities": ["64500:1"], "local_pref": 70}},
        {"match": {"community": ["64500:1"]}, "set": {"med": 9}, "action": "accept"},
        {"action": "reject"},
    ])
    route, verdict = run_terms(policy, held(path=(65010, 65011)))
    # The second term saw the community the first added.
    assert verdict == "accept"
    assert (route.communities, route.local_pref, route.med) == ((64500 << 16 | 1,), 70, 9)
    route, verdict = run_terms(policy, held(path=(65010, 65012)))
    assert verdict == "reject" and route.communities == () and route.med is None


def test_no_term_deciding_leaves_the_verdict_to_the_relationship():
    policy = terms([{"match": {"origin_as": [1]}, "action": "reject"},
                    {"set": {"med": 3}}])
    route, verdict = run_terms(policy, held())
    assert verdict is None and route.med == 3
    assert run_terms((), held()) == (held(), None)


def test_a_term_that_modifies_nothing_returns_the_same_route():
    policy = terms([{"action": "accept"}])
    route = held()
    assert run_terms(policy, route)[0] is route


def test_add_and_remove_communities():
    route = held(communities=("64500:1", "64500:2", "no-export"),
                 large_communities=("64500:1:1", "64500:2:2"))
    (term,) = terms([{"set": {"add_communities": ["64500:3", "64500:1"],
                              "remove_communities": ["64500:2", "64500:99"],
                              "add_large_communities": ["64500:3:3"],
                              "remove_large_communities": ["64500:1:1"]}}])
    out, _ = run_terms((term,), route)
    assert [community_text(c) for c in out.communities] == ["64500:1", "64500:3", "65535:65281"]
    assert out.large_communities == ((64500, 2, 2), (64500, 3, 3))


def test_remove_all_communities_then_add():
    route = held(communities=("64500:1", "no-export"), large_communities=("64500:1:1",))
    (term,) = terms([{"set": {"remove_communities": "all", "add_communities": ["64500:5"],
                              "remove_large_communities": "all"}}])
    out, _ = run_terms((term,), route)
    assert out.communities == (64500 << 16 | 5,)
    assert out.large_communities == ()


def test_export_prepend_term_needs_the_local_as():
    policy = parse_policy({"export": [{"set": {"prepend": 2}}]}).export_terms
    sent = Route(prefix=PFX, next_hop="10.0.1.1", as_path=(65001, 65010))
    assert run_terms(policy, sent, local_asn=65001)[0].as_path == (65001, 65001, 65001, 65010)
    assert run_terms(policy, sent)[0].as_path == (65001, 65010)


# -- communities --------------------------------------------------------------------

def test_parse_community_forms():
    assert parse_community("64500:120") == 64500 << 16 | 120
    assert parse_community(" NO-EXPORT ") == NO_EXPORT
    assert parse_community("no-advertise") == NO_ADVERTISE
    assert parse_community("blackhole") == BLACKHOLE == parse_community("65535:666")
    assert parse_community(7) == 7
    assert parse_community("0:0") == 0
    assert parse_community("65535:65535") == 0xFFFFFFFF
    assert community_text(BLACKHOLE) == "65535:666"


@pytest.mark.parametrize("bad,fragment", [
    ("65536:1", "65536 does not fit in 16 bits"),
    ("1:65536", "65536 does not fit in 16 bits"),
    ("1", "must be ASN:value"),
    ("a:b", "'a' is not a number"),
    ("-1:2", "'-1' is not a number"),
    (2**32, "outside 0..4294967295"),
    (-1, "outside 0..4294967295"),
    (True, "is not text"),
    (None, "is not text"),
])
def test_parse_community_refuses(bad, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_community(bad)


def test_parse_large_forms():
    assert parse_large("64500:1:2") == (64500, 1, 2)
    assert parse_large((64500, 1, 2)) == (64500, 1, 2)
    assert parse_large(["4294967295", 0, 0]) == (4294967295, 0, 0)
    for bad in ("1:2", "1:2:3:4", "1:2:x", "4294967296:0:0", 5, None):
        with pytest.raises(ValueError):
            parse_large(bad)


def test_community_sets_are_sorted_without_duplicates():
    assert community_set(["64500:2", "64500:1", 64500 << 16 | 2]) == (64500 << 16 | 1, 64500 << 16 | 2)
    assert large_set(["2:0:0", (1, 0, 0), "1:0:0"]) == ((1, 0, 0), (2, 0, 0))
    # Routes hold them in that form, so equal sets give equal routes.
    assert held(communities=("64500:2", "64500:1")) == held(communities=("64500:1", "64500:2", "64500:1"))


# -- ROAs and route origin validation ----------------------------------------------------

def test_parse_roas_defaults_max_length_to_the_prefix_length():
    roas = parse_roas([{"prefix": "203.0.113.0/24", "asn": 65011},
                       {"prefix": "2001:db8::/32", "asn": 65012, "max_length": 48},
                       {"prefix": "198.51.100.0/24", "asn": 0}])
    assert roas == (Roa("203.0.113.0/24", 65011, 24), Roa("2001:db8::/32", 65012, 48),
                    Roa("198.51.100.0/24", 0, 24))
    assert str(roas[1]) == "ROA 2001:db8::/32-48 AS65012"
    assert parse_roas([]) == ()


@pytest.mark.parametrize("data,message", [
    ({"prefix": "203.0.113.1/24", "asn": 1}, "roas[0].prefix: '203.0.113.1/24': 203.0.113.1/24 has host bits set"),
    ({"prefix": "nowhere", "asn": 1}, "roas[0].prefix: 'nowhere'"),
    ({"asn": 1}, "roas[0].prefix: None"),
    ({"prefix": 3405803776, "asn": 1}, "roas[0].prefix: 3405803776"),
    ({"prefix": "203.0.113.0/24", "asn": -1}, "roas[0].asn: -1 must be a whole number in 0..4294967294"),
    ({"prefix": "203.0.113.0/24", "asn": "65001"}, "roas[0].asn: '65001' must be a whole number"),
    ({"prefix": "203.0.113.0/24"}, "roas[0].asn: None must be a whole number"),
    ({"prefix": "203.0.113.0/24", "asn": 1, "max_length": 23}, "roas[0].max_length: 23 must be a whole number in 24..32"),
    ({"prefix": "203.0.113.0/24", "asn": 1, "max_length": 33}, "roas[0].max_length: 33 must be a whole number in 24..32"),
    ({"prefix": "2001:db8::/32", "asn": 1, "max_length": 129}, "roas[0].max_length: 129 must be a whole number in 32..128"),
    ({"prefix": "203.0.113.0/24", "asn": 1, "maxlen": 24}, "roas[0]: unknown key 'maxlen'"),
    ("203.0.113.0/24 AS1", "roas[0]: '203.0.113.0/24 AS1' must be a dict"),
])
def test_parse_roas_refuses(data, message):
    with pytest.raises(PolicyError) as caught:
        parse_roas([data])
    assert str(caught.value).startswith(message), str(caught.value)


def test_parse_roas_wants_a_list():
    with pytest.raises(PolicyError, match="roas: .* must be a list"):
        parse_roas({"prefix": "203.0.113.0/24", "asn": 1})


ROAS = (
    Roa("203.0.113.0/24", 65011, 24),
    Roa("198.51.100.0/22", 65012, 23),
    Roa("198.51.100.0/22", 65013, 24),    # two ROAs for one prefix: either may originate
    Roa("192.0.2.0/24", 0, 32),            # AS0: nobody may originate
    Roa("2001:db8::/32", 65014, 48),
)


@pytest.mark.parametrize("prefix,origin,state", [
    ("203.0.113.0/24", 65011, VALID),
    ("203.0.113.0/24", 65099, INVALID),              # covered, wrong origin
    ("203.0.113.0/25", 65011, INVALID),              # longer than max_length
    ("203.0.112.0/23", 65011, NOT_FOUND),            # covers the ROA, is not covered by it
    ("198.51.100.0/22", 65012, VALID),
    ("198.51.101.0/24", 65012, INVALID),             # /24 > 23 for AS65012 ...
    ("198.51.101.0/24", 65013, VALID),               # ... but another ROA allows 65013
    ("198.51.100.0/23", 65013, VALID),
    ("198.51.100.0/25", 65013, INVALID),
    ("192.0.2.0/24", 0, INVALID),                    # AS0 authorises nobody, not even "AS0"
    ("192.0.2.128/25", 65011, INVALID),
    ("203.0.113.0/24", None, INVALID),               # no origin AS (empty path)
    ("10.0.0.0/8", 65011, NOT_FOUND),
    ("2001:db8:1::/48", 65014, VALID),
    ("2001:db8:1:1::/64", 65014, INVALID),
    ("2001:db9::/32", 65014, NOT_FOUND),
    ("::/0", 65014, NOT_FOUND),
])
def test_rpki_state(prefix, origin, state):
    assert rpki_state(ROAS, prefix, origin) == state


def test_rpki_state_without_roas_is_not_found():
    assert rpki_state((), "203.0.113.0/24", 65011) == NOT_FOUND
