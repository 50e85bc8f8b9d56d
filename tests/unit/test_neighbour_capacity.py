"""How much room in the kernel's neighbour tables a lab asks for
(testbed.linux.neigh_limits): the count from its plan, and the thresholds that
would leave that room."""

from testbed.linux import neigh_limits as neighbours
from testbed.model.addressing import plan
from testbed.model.generate import internet
from testbed.model.topology import Topology

CURRENT = {"4.2": 512, "4.3": 1024, "6.2": 512, "6.3": 1024}


def test_what_a_plan_may_need():
    t = Topology("need")
    a, b, c = t.add_as(65001, "A"), t.add_as(65002, "B"), t.add_as(65003, "C")
    t.transit(a, b)
    t.peering(b, c)
    p = plan(t.validate())
    sessions = 2 * 2                 # each end of A-B and B-C resolves its peer
    hosts = 2 * len(p.hosts)         # each host its gateway, each gateway its host
    assert neighbours.needed(p) == {4: sessions + hosts, 6: sessions + hosts}


def test_ixp_members_may_all_talk_to_each_other():
    small = neighbours.needed(plan(internet(30, seed=1)))[4]
    p = plan(internet(30, seed=1))
    members = sum(len(x.members) * (len(x.members) - 1) for x in p.ixps.values())
    assert members > 0
    routers = sum(len(r.neighbors) + len(r.igp) for r in p.routers.values())
    assert small == routers + 2 * len(p.hosts) + members


def test_thresholds_are_raised_only_when_short_and_never_lowered():
    assert neighbours.plan_thresholds(CURRENT, {4: 20, 6: 0}, {4: 500, 6: 500}) == {}
    raised = neighbours.plan_thresholds(CURRENT, {4: 20, 6: 0}, {4: 5060, 6: 5060})
    # 20 + 5060 + 1265 + 256 = 6601 IPv4 entries: 7168, the next multiple of 1024
    assert raised == {"4.3": 7168, "4.2": 3584, "6.3": 7168, "6.2": 3584}
    # a gc_thresh2 already higher stays; a family with room is left alone
    mixed = neighbours.plan_thresholds({"4.2": 6000, "4.3": 6144, "6.2": 512, "6.3": 65536},
                                       {4: 1000, 6: 0}, {4: 5060, 6: 5060})
    assert mixed == {"4.3": 8192, "4.2": 6000}


def test_a_thousand_as_internet_needs_more_than_the_default():
    need = neighbours.needed(plan(internet(1000, seed=1)))
    assert need[4] > 1024 * 3  # what made the 1,000-AS lab's sessions fail to open
    assert neighbours.plan_thresholds(CURRENT, {4: 0, 6: 0}, need)["4.3"] >= need[4]
