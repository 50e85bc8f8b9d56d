"""The router-backend seam: what a lab asks of the routing software it runs.

A lab (``testbed.lab``) builds namespaces and links, then hands every AS
router to one ``RouterBackend``: the backend writes the routers' files,
starts one routing daemon per router inside its namespace, reports each
router's sessions and routing state, and carries out the operator's actions
(shut a session down, bring it back, change a policy, originate a prefix).
The lab never touches a daemon's files, sockets or signals itself, so a BIRD
or FRR backend is a new class behind this one, like
``testbed.routers.exabgp.ExaBGPBackend`` (ExaBGP with the route agent).

Data in: the address plan (``testbed.model.addressing.Plan``: routers,
neighbors, addresses, policies), the lab's id and work directory, and each
router's namespace (a node with ``pid`` and ``popen``). Data out: per-router
*states* (the dicts below), RIB snapshots, and these errors: ``LabError``
for anything a backend could not do (naming the router), ``SpeakerCrashed``
for a daemon that died (naming the router), ``MissingDependency`` for
software the machine lacks.

A router's *state* is a dict with at least:
``generation``  an int that grows whenever anything below changes;
``sessions``    neighbor address -> ``{"name": peer router, "state":
                "established" | another BGP FSM state in lower case,
                "last_notification": a dict or None}``;
``state_digest``  ``testbed.routers.agent_client.state_digest`` of the router's
                Loc-RIB and Adj-RIB-In in JSON form (so that it compares
                with ``Expectation.digests()``);
``shut``        neighbor address -> reason, for sessions the router closed
                for exceeding a maximum-prefix limit (may be empty).

A backend whose daemon has no change feed (BIRD's and FRR's control
sockets answer queries only) polls in ``changes`` and bumps ``generation``
when a router's answer differs from the last; the Loc-RIB and Adj-RIB-In
it reads are converted to the JSON form of ``testbed.bgp.route.Route``
before the digest, so that "converged" keeps meaning "equal to the model".
Where a daemon cannot apply the lab's policy language, the backend says so
(``LabError`` from ``write_configs`` or ``set_policy``), never silently.

Contract common to every method that takes ``router``: an unknown router
raises ``LabError`` naming it; a router whose daemon died raises
``LabError`` (``check_alive`` then says which one). Methods block until the
daemon acknowledged the change, not until routing converged: waiting is
the lab's (``testbed.lab.converge``), and a backend never waits for routes.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol


class Namespace(Protocol):
    """What a backend may use of a router's network namespace (a Mininet node)."""

    pid: int  # a process inside the namespace (for setns, netlink)

    def popen(self, argv: list[str], **kwargs):  # a process started inside it
        ...


SessionHeld = Callable[[str, str], None]


class RouterBackend(ABC):
    """One kind of routing software, driving every router of one lab.

    Lifecycle, in the order a lab calls it: ``check_machine`` (before
    anything is created), ``prepare`` then ``write_configs`` (may run in
    threads beside the namespace build), ``start``, ``release_routes``,
    then any number of queries and events, and ``stop`` (always, also after
    a failed start, also twice), then ``reap``.
    """

    #: A name for messages and the CLI (``"exabgp"``, ``"bird"``, ``"frr"``).
    kind: str = "?"

    starts_while_configuring = False
    """True: ``start`` calls ``configured(router)`` before each router, and
    the lab configures namespaces beside it; else all are configured first."""

    def __init__(self) -> None:
        self.states: dict[str, dict] = {}
        """router -> its latest state (see the module docstring), kept
        current by ``refresh`` and ``changes``."""
        self.crashed: set[str] = set()
        """Routers killed on purpose (``crash``): no longer reported by
        ``check_alive``, no longer asked for their state."""
        self.on_session_held: SessionHeld = lambda router, peer: None
        """Called with (router, peer) when the backend holds a session down
        because the router closed it for exceeding a maximum-prefix limit
        (see ``changes``). The lab sets it to update its prediction."""
        self.start_timeout = 60.0
        """The lab's start timeout: a backend that holds routes back until
        ``release_routes`` lets them out by itself after this long."""
        self.configured: Callable[[str], None] = lambda router: None
        """Where the lab configures the namespaces beside ``start`` (a
        backend whose ``starts_while_configuring`` is true), it sets this to
        a function that returns once ``router``'s namespace, and those it
        needs for its sessions, are configured: ``start`` calls it before it
        starts that router's daemon."""
        self._alive_checked = 0.0

    # -- lifecycle ------------------------------------------------------------
    @abstractmethod
    def check_machine(self) -> None:
        """Raise ``MissingDependency`` (saying what to install) if the
        machine lacks this backend's software. Creates nothing."""

    @abstractmethod
    def prepare(self, lab_id: str, workdir: Path) -> Callable[[], list[str]] | None:
        """Remember the lab's id and where it keeps its files (``workdir``,
        mode 0700; one subdirectory per router is the backend's to make).
        Return the slow part of starting any helper the daemons need (e.g.
        a fork server), which the lab runs in a thread beside the build and
        joins before ``start``; it returns notes for the user (a feature
        that could not be had). Every process started must carry the lab's
        tag (``testbed.lab.cleanup.LAB_ENV``) so that the lab's cleanup
        finds it."""

    @abstractmethod
    def write_configs(self) -> None:
        """Render every router's configuration into its directory and check
        it with the daemon's own validator. Raise ``LabError`` quoting the
        validator's complaint; start nothing."""

    @abstractmethod
    def start(self, nodes: Mapping[str, Namespace], deadline: float) -> None:
        """Start one daemon per router inside ``nodes[router]`` and return
        once every one of them listens for BGP and answers queries. Start
        the passive side of each session first where it matters (a refused
        connection costs a daemon a back-off). Raise ``LabError`` past
        ``deadline`` (monotonic clock), ``SpeakerCrashed`` if a daemon dies."""

    @abstractmethod
    def release_routes(self, deadline: float) -> None:
        """End the start-up update delay: until now routers bring sessions
        up but send no UPDATE; from now on they send their routes. Return
        once every router acknowledged. A backend without such a delay does
        nothing."""

    @abstractmethod
    def stop(self) -> None:
        """Stop every daemon and helper this backend started (the lab kills
        whatever carries its tag afterwards). Never raises; safe twice."""

    def reap(self) -> None:
        """Collect the daemons' exit statuses after the lab's sweep (optional)."""

    # -- liveness --------------------------------------------------------------
    @abstractmethod
    def check_alive(self) -> None:
        """Raise ``SpeakerCrashed`` naming the router (and quoting its logs)
        if any daemon, or any process a router consists of, has exited;
        routers in ``crashed`` excepted. Cheap enough for a few calls a second."""

    ALIVE_PERIOD = 0.25  # seconds between liveness checks inside polling loops

    def check_alive_now_and_then(self) -> None:
        """``check_alive`` at most every ``ALIVE_PERIOD`` seconds, for
        polling loops (reading every daemon's /proc entry a hundred times a
        second cost more CPU than starting them)."""
        now = time.monotonic()
        if now - self._alive_checked >= self.ALIVE_PERIOD:
            self._alive_checked = now
            self.check_alive()

    @abstractmethod
    def crash(self, router: str) -> None:
        """Kill the router's daemon at once (SIGKILL, no NOTIFICATION), as
        a crashed routing daemon, and add it to ``crashed``."""

    # -- state -----------------------------------------------------------------
    @abstractmethod
    def refresh(self, deadline: float) -> None:
        """Ask every live router for its state now and store it in
        ``states`` (a state the backend was told of earlier may be older)."""

    @abstractmethod
    def changes(self, timeout: float, deadline: float) -> set[str]:
        """Wait at most ``timeout`` seconds for any live router's state to
        change; store the new states in ``states``; return the routers whose
        ``generation`` grew (empty on timeout). ``deadline`` bounds a reply
        already under way.

        This is where the backend learns what the routers did, so it is also
        where it carries out what a real router would do by itself: a
        session a router closed for exceeding a maximum-prefix limit is held
        down until an operator clears it (``admin_up``), whatever the peer
        sends meanwhile; a backend whose daemon cannot hold it by itself
        holds it here (``admin_down``) and then calls ``on_session_held``.
        """

    @abstractmethod
    def snapshot(self, router: str) -> dict:
        """The router's state plus its tables in JSON form: ``loc_rib``
        (prefix -> route), ``adj_rib_in`` and ``adj_rib_out`` (neighbor
        address -> prefix -> route) and ``kernel`` (prefix -> next hop). A
        route is ``{"prefix", "as_path": [asn...], "next_hop", "neighbor",
        ...}`` as ``testbed.bgp.route.Route.to_json`` gives it."""

    @abstractmethod
    def sessions(self, router: str) -> dict[str, dict]:
        """The router's sessions now: neighbor address -> the state's
        session dict (``name``, ``state``, ``last_notification``, ...)."""

    # -- events ----------------------------------------------------------------
    @abstractmethod
    def admin_down(self, router: str, peer: str) -> None:
        """Shut down ``router``'s session with router ``peer`` as an operator
        does: the router sends a NOTIFICATION (Cease), drops the session and
        refuses the peer's reconnections until ``admin_up``. Returns once the
        daemon has taken the change (not once the session is down)."""

    @abstractmethod
    def admin_up(self, router: str, peer: str) -> None:
        """Undo ``admin_down`` (and clear a maximum-prefix hold): the router
        accepts and opens the session again."""

    @abstractmethod
    def admin_down_peers(self, router: str) -> set[str]:
        """The peers whose session ``router`` holds administratively down."""

    @abstractmethod
    def reload(self, router: str) -> None:
        """Make the router's daemon re-read its configuration file as it is
        on disk now (a test may have edited it), and return once it did."""

    @abstractmethod
    def set_policy(self, router: str, peer: str, policy: dict | None) -> None:
        """Replace the policy ``router`` applies on its session with router
        ``peer`` (``testbed.bgp.rules`` language, already checked; ``None``
        for the relationship's plain policy). Export changes apply at once;
        an import change makes the peer send its routes again."""

    @abstractmethod
    def originate(self, router: str, prefix: str, communities: Iterable[str] = (),
                  large_communities: Iterable[str] = (), as_path: Iterable[int] = ()) -> None:
        """``router`` starts originating ``prefix`` (a normalised network),
        tagged with communities in text form (``"65000:1"``), carrying
        ``as_path`` behind its own ASN (a replayed route; usually empty)."""

    @abstractmethod
    def withdraw(self, router: str, prefix: str) -> None:
        """``router`` stops originating ``prefix``."""

    # -- diagnostics -----------------------------------------------------------
    @abstractmethod
    def log_tail(self, router: str, lines: int = 15) -> str:
        """The last ``lines`` of each of the router's logs, each headed by
        its path, for error messages ("" if there are none)."""

    @abstractmethod
    def files(self, router: str) -> list[Path]:
        """The router's logs and configuration files, for ``Lab.dump``."""
