"""Hot-potato and cold-potato routing between networks that meet twice.

A and X both have routers in two cities, west and east, and peer in both.
A's customers sit in the west, X's in the east. Inside each network the
routers speak iBGP to each other and an IGP gives each internal link a cost.

- **Hot potato** (the default): X's east router has two routes to A's
  prefix: one from its own eBGP session with A in the east, one over iBGP
  from its west router. Same local_pref, same AS path; the eBGP route wins
  (and would win on IGP cost too: the exit is right here). So X hands its
  traffic to A at the nearest exit, the east, and *A* carries it west, on
  A's own network and at A's cost. Each network gets rid of the traffic as
  fast as it can, and the two directions of a conversation take different
  paths.
- **Cold potato**: A sends a MED with its routes, the IGP cost from the
  announcing router to where the prefix lives: 0 in the west, 10 in the
  east. X honours MEDs (it compares them for routes from the same
  neighbouring AS, before eBGP-over-iBGP), so X's east router now prefers
  the route through its west router: X carries the traffic west on its own
  network and hands it over next to A's customers.
- **IGP cost**: X's middle router has no peering of its own. It hears A's
  routes over iBGP from both border routers and picks the exit it can reach
  most cheaply: the east (cost 5, against 15 through the east to the west).
  With MEDs, the west route wins before IGP cost is even looked at.
"""

from testbed.assertions import assert_route

TOPOLOGY = "two_pops"


def test_hot_potato_exits_at_the_nearest_peering_point(lab, report):
    assert lab.route("X-east", "A")["neighbor"] == lab.plan.routers["X-east"].neighbor("A-east").address
    # X-west has its own exit too; its iBGP route from X-east costs 10.
    assert lab.route("X-west", "A")["neighbor"] == lab.plan.routers["X-west"].neighbor("A-west").address
    for family in (4, 6):
        path = lab.router_traceroute("X", "A", family=family)
        assert path[:3] == ["X-east", "A-east", "A-west"], path
    report("X -> A, hot potato", " -> ".join(lab.router_traceroute("X", "A")))
    # The way back is not the same: A hands X's traffic over in the west.
    back = lab.router_traceroute("A", "X")
    assert back[:3] == ["A-west", "X-west", "X-east"], back
    report("A -> X, hot potato", " -> ".join(back))


def test_internal_routes_know_their_igp_cost(lab):
    route = assert_route(lab, "A-east", "A")  # learned over iBGP; the kernel forwards to the IGP hop
    assert route["igp_cost"] == 10 and not route["ebgp"]


def test_a_router_without_an_exit_takes_the_cheapest_one(lab):
    mid = lab.plan.routers["X-mid"]
    route = assert_route(lab, "X-mid", "A")
    assert route["neighbor"] == mid.neighbor("X-east").address and route["igp_cost"] == 5, route
    other = lab.snapshot("X-mid")["adj_rib_in"][mid.neighbor("X-west").address][lab.prefix_of("A")]
    assert other["igp_cost"] == 15, other  # X-west is reached through X-east: 5 + 10


def test_cold_potato_with_meds_carries_traffic_to_the_destination(lab, report):
    lab.set_policy("A-west", "X-west", {"med": "igp"}, wait=False)
    lab.set_policy("A-east", "X-east", {"med": "igp"})
    assert lab.route("X-east", "A")["med"] == 0
    assert lab.route("X-east", "A")["neighbor"] == lab.plan.routers["X-east"].neighbor("X-west").address
    for family in (4, 6):
        path = lab.router_traceroute("X", "A", family=family)
        assert path[:3] == ["X-east", "X-west", "A-west"], path
    report("X -> A, cold potato", " -> ".join(lab.router_traceroute("X", "A")))
    mid = lab.plan.routers["X-mid"]
    assert lab.route("X-mid", "A")["neighbor"] == mid.neighbor("X-west").address
    # The MEDs A sends steer only traffic towards A.
    assert lab.router_traceroute("A", "X")[:3] == ["A-west", "X-west", "X-east"]
