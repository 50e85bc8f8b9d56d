"""What one UPDATE costs a zygote speaker: a micro-benchmark on a real lab.

``python -m testbed.bench.per_update [--updates N] [--rounds R]`` starts a
three-AS chain, P the provider of R, R the provider of C. P's agent
originates N /24s, each with an AS path of its own (so each leaves in an
UPDATE of its own, as in the generated Internets), while its session with R
is down (``lab.depeer``, admin). Each round then brings the session up
(``lab.repeer``): P's agent announces all N at once, P's ExaBGP sends N
one-route UPDATEs, R's ExaBGP receives them, its agent decides and R
forwards each to C, which installs them. A round ends when C's kernel
holds the N routes and every thread of the three speakers has gone quiet;
then P depeers again, R withdraws the N routes from C, and the next round
starts.

The threads of each speaker are read from ``/proc/<pid>/task/<tid>``
before and after each round (``sample``): ``stat`` for user and system
ticks, ``schedstat`` for the nanoseconds on a CPU, ``status`` for
voluntary and involuntary context switches, ``comm`` for the thread's
name (``exabgp:<router>`` for ExaBGP's thread, ``agent:<router>`` for the
agent's: ``testbed.speaker.helpers.set_name``). ``per_update`` divides
the differences by the UPDATEs P's agent sent (P) or R's and C's agents
received (R, C), from their summaries' counters. Output: one table per
run (the median round, and the range), and a ``PER_UPDATE {...}`` JSON line
with every round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import NamedTuple

from testbed.testing.wait import wait_until

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SPEAKERS = ("P", "R", "C")
ROLES = {"P": "sends N", "R": "receives N, sends N", "C": "receives N"}
QUIET_CPU = 0.002     # seconds of CPU per QUIET_WINDOW below which a speaker is quiet
QUIET_WINDOW = 0.2


class ThreadSample(NamedTuple):
    """One thread's counters at one moment."""

    user: int          # clock ticks (stat field 14)
    system: int        # clock ticks (stat field 15)
    run_ns: int        # nanoseconds on a CPU (schedstat, first field)
    voluntary: int     # context switches (status)
    involuntary: int


def thread_kind(comm: str) -> str:
    """``exabgp``, ``agent`` or ``other`` from a thread's name."""
    head = comm.partition(":")[0]
    return head if head in ("exabgp", "agent") else "other"


def parse_stat(text: str) -> tuple[int, int]:
    """(utime, stime) in ticks from a ``/proc/.../stat`` line (the name may hold spaces)."""
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]), int(fields[12])


def parse_switches(text: str) -> tuple[int, int]:
    """(voluntary, involuntary) context switches from a ``/proc/.../status`` text."""
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
            found[key] = int(value)
    return found["voluntary_ctxt_switches"], found["nonvoluntary_ctxt_switches"]


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def sample(pid: int) -> dict[str, ThreadSample]:
    """Counters of every thread of ``pid``, summed by kind (``thread_kind``)."""
    totals: dict[str, list[int]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        base = f"/proc/{pid}/task/{tid}"
        try:
            kind = thread_kind(_read(f"{base}/comm").strip())
            user, system = parse_stat(_read(f"{base}/stat"))
            run_ns = int(_read(f"{base}/schedstat").split()[0])
            voluntary, involuntary = parse_switches(_read(f"{base}/status"))
        except (OSError, ValueError, KeyError):
            continue  # a thread that ended meanwhile
        row = totals.setdefault(kind, [0, 0, 0, 0, 0])
        for i, value in enumerate((user, system, run_ns, voluntary, involuntary)):
            row[i] += value
    return {kind: ThreadSample(*row) for kind, row in totals.items()}


def per_update(before: dict[str, ThreadSample], after: dict[str, ThreadSample], updates: int,
               ticks: int = CLOCK_TICKS) -> dict[str, dict[str, float]]:
    """Per thread kind (and ``total``): µs of CPU (``cpu``: on-CPU time;
    ``user``, ``sys``: from ticks) and context switches (``vcs``,
    ``ics``) per UPDATE between two samples of one speaker."""
    if updates <= 0:
        raise ValueError(f"no UPDATEs to divide by ({updates})")
    result: dict[str, dict[str, float]] = {}
    total = dict.fromkeys(("cpu", "user", "sys", "vcs", "ics"), 0.0)
    for kind in sorted(after):
        a, b = after[kind], before.get(kind, ThreadSample(0, 0, 0, 0, 0))
        row = {"cpu": (a.run_ns - b.run_ns) / 1e3 / updates,
               "user": (a.user - b.user) * 1e6 / ticks / updates,
               "sys": (a.system - b.system) * 1e6 / ticks / updates,
               "vcs": (a.voluntary - b.voluntary) / updates,
               "ics": (a.involuntary - b.involuntary) / updates}
        result[kind] = row
        for key, value in row.items():
            total[key] += value
    result["total"] = total
    return result


SPEAKER_COUNTERS = ("messages_read", "socket_reads", "peer_steps", "reactor_turns", "handover_writes")


def counter_rates(before: dict, after: dict, updates: int) -> dict[str, float]:
    """The speaker's own counters (``testbed.speaker.batching.COUNTERS``,
    in its agent's summary) per UPDATE between two summaries."""
    return {name: round((after[name] - before.get(name, 0)) / updates, 3)
            for name in SPEAKER_COUNTERS if name in after}


def chain(idle_peers: int = 0):
    """P -> R -> C, each the transit customer of the one before; C also
    peers with ``idle_peers`` stubs (D1, D2...), to which it sends none of
    P's routes: sessions that only cost their turns."""
    from testbed.model.topology import Topology

    topo = Topology("per-update", hold_time=90)
    p, r, c = (topo.add_as(65001 + i, name) for i, name in enumerate(SPEAKERS))
    topo.transit(p, r)
    topo.transit(r, c)
    for i in range(idle_peers):
        topo.peering(c, topo.add_as(65101 + i, f"D{i + 1}"))
    return topo.validate()


def prefixes(count: int) -> list[str]:
    if count > 1 << 16:
        raise ValueError(f"at most {1 << 16} UPDATEs (20.0.0.0/24 to 20.255.255.0/24)")
    return [f"20.{i >> 8}.{i & 255}.0/24" for i in range(count)]


def _originate(client, count: int, chunk: int = 200) -> None:
    """P originates ``count`` prefixes, each behind an ASN of its own
    (pipelined requests, ``chunk`` at a time)."""
    todo = prefixes(count)
    for start in range(0, count, chunk):
        part = todo[start:start + chunk]
        for i, prefix in enumerate(part, start):
            client.send({"op": "originate", "prefix": prefix, "as_path": [4200000000 + i]})
        for _ in part:
            reply = client.receive(120.0)
            if "error" in reply:
                raise RuntimeError(f"P refused to originate: {reply['error']}")


def _wait_quiet(pids: dict[str, int], timeout: float = 60.0) -> None:
    """Until no speaker used more than ``QUIET_CPU`` in ``QUIET_WINDOW``."""
    def cpu():
        return {name: sum(s.run_ns for s in sample(pid).values()) for name, pid in pids.items()}

    last = cpu()

    def quiet():
        nonlocal last
        time.sleep(QUIET_WINDOW)
        now = cpu()
        done = all(now[name] - last[name] < QUIET_CPU * 1e9 for name in pids)
        last = now
        return done

    wait_until(quiet, timeout, "the speakers to go quiet", interval=0)


def run(updates: int, rounds: int, log=print, watch=None, idle_peers: int = 0) -> list[dict]:
    """``rounds`` rounds of ``updates`` UPDATEs; one result per round.
    ``watch(pids)``, if given, is called as each round starts with the
    speakers' pids by name and returns a function called as it ends (to
    run a profiler over the rounds)."""
    from testbed.bench.experiments import _count_routes
    from testbed.lab.lab import Lab

    lab = Lab(chain(idle_peers), process_model="zygote")
    results = []
    try:
        log(f"starting P -> R -> C{f' (with {idle_peers} idle peers)' if idle_peers else ''}; "
            f"P originates {updates} prefixes with an AS path each")
        lab.start(timeout=60.0)
        clients = {name: lab._client(name) for name in SPEAKERS}
        pids = {name: int(clients[name].request("summary", timeout=10.0)["pid"]) for name in SPEAKERS}
        c_shell = lab.nodes["C"].pid
        held = clients["R"].request("summary", timeout=10.0)["loc_rib_size"]
        lab.depeer("P", "R", wait=False)
        wait_until(lambda: clients["R"].request("summary", timeout=10.0)["loc_rib_size"] < held, 30.0,
              "R to drop P's routes")
        t0 = time.monotonic()
        _originate(clients["P"], updates)
        log(f"  P originated {updates} prefixes in {time.monotonic() - t0:.1f} s")
        for number in range(1, rounds + 1):
            base = _count_routes(c_shell)
            _wait_quiet(pids)
            stats0 = {n: clients[n].request("summary", timeout=10.0)["stats"] for n in SPEAKERS}
            before = {n: sample(pid) for n, pid in pids.items()}
            stop_watching = watch(pids) if watch is not None else None
            t0 = time.monotonic()
            lab.repeer("P", "R", wait=False)
            wait_until(lambda: _count_routes(c_shell) - base >= updates, 120.0,
                  f"C's kernel to hold {updates} more routes")
            wall = time.monotonic() - t0
            _wait_quiet(pids)
            after = {n: sample(pid) for n, pid in pids.items()}
            if stop_watching is not None:
                stop_watching()
            stats1 = {n: clients[n].request("summary", timeout=10.0)["stats"] for n in SPEAKERS}
            counts = {"P": stats1["P"]["announced_out"] - stats0["P"]["announced_out"],
                      "R": stats1["R"]["updates_in"] - stats0["R"]["updates_in"],
                      "C": stats1["C"]["updates_in"] - stats0["C"]["updates_in"]}
            result = {"round": number, "updates": counts, "wall_s": round(wall, 3),
                      "speakers": {n: per_update(before[n], after[n], counts[n]) for n in SPEAKERS},
                      "counters": {n: counter_rates(stats0[n], stats1[n], counts[n]) for n in SPEAKERS}}
            results.append(result)
            log(f"  round {number}: {counts['R']} UPDATEs into R in {wall:.2f} s; µs of CPU per UPDATE: "
                + ", ".join(f"{n} {result['speakers'][n]['total']['cpu']:.0f}" for n in SPEAKERS))
            lab.depeer("P", "R", wait=False)
            wait_until(lambda: _count_routes(c_shell) <= base, 60.0, "C's kernel to lose P's routes")
    finally:
        lab.stop()
    return results


def median_round(results: list[dict]) -> dict:
    """The round with the median CPU per UPDATE at R (the receiving speaker)."""
    ordered = sorted(results, key=lambda r: r["speakers"]["R"]["total"]["cpu"])
    return ordered[(len(ordered) - 1) // 2]


def table(results: list[dict]) -> str:
    """The median round as text: a row per speaker and thread kind, and
    the range of the total over the rounds."""
    chosen = median_round(results)
    lines = [f"µs of CPU and context switches per UPDATE (round {chosen['round']} of {len(results)}, "
             f"the median at R; {chosen['updates']['R']} one-route UPDATEs)",
             f"{'speaker':<24}{'thread':<8}{'cpu':>8}{'user':>8}{'sys':>8}{'vcs':>8}{'ics':>8}"]
    for name in SPEAKERS:
        rows = chosen["speakers"][name]
        for kind in [k for k in rows if k != "total"] + ["total"]:
            row = rows[kind]
            label = f"{name} ({ROLES[name]})" if kind == sorted(rows)[0] else ""
            lines.append(f"{label:<24}{kind:<8}{row['cpu']:>8.1f}{row['user']:>8.1f}{row['sys']:>8.1f}"
                         f"{row['vcs']:>8.2f}{row['ics']:>8.2f}")
        rates = chosen.get("counters", {}).get(name)
        if rates:
            lines.append(f"{'':<24}per UPDATE: " + ", ".join(f"{k.replace('_', ' ')} {v:.2f}"
                                                             for k, v in rates.items()))
        spread = [r["speakers"][name]["total"]["cpu"] for r in results]
        lines.append(f"{'':<24}{'range':<8}{min(spread):>8.1f}-{max(spread):.1f} over {len(results)} rounds,"
                     f" median {statistics.median(spread):.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.bench.per_update", description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=1000, help="one-route UPDATEs per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-peers", type=int, default=0, help="peers of C that receive nothing")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("per_update: run as root (it starts a lab)", file=sys.stderr)
        return 3
    results = run(args.updates, args.rounds, idle_peers=args.idle_peers)
    print(table(results))
    print("PER_UPDATE " + json.dumps({"updates": args.updates, "idle_peers": args.idle_peers, "rounds": results,
                                      "environment": {k: v for k, v in os.environ.items()
                                                      if k.startswith("TESTBED_")}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
