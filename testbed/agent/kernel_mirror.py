"""The route agent's side of the kernel routing table.

The agent hands ``KernelMirror`` the kernel operations of its engine's
InstallRoute/RemoveRoute actions (``("replace", prefix, next hop)``,
``("delete", prefix, None)``), already resolved to a directly connected
next hop; it carries them out on a ``testbed.linux.routes.KernelTable``
(one netlink batch when the table can) and keeps ``routes``, what it
believes the kernel holds, which the control protocol reports. Failures
are logged and appended to the agent's ``errors``; routing goes on.
``reconcile`` puts back Loc-RIB routes the kernel dropped with a link.
"""

from __future__ import annotations

import logging

from testbed.bgp.actions import kernel_target
from testbed.model.igp import kernel_next_hop

log = logging.getLogger("testbed.agent.agent")


class KernelMirror:
    def __init__(self, kernel, errors: list[str]):
        self.kernel = kernel          # None: nothing is written (a route server, tests)
        self.errors = errors
        self.routes: dict[str, str] = {}

    def apply(self, operations: list[tuple[str, str, str | None]]) -> None:
        """Carry out kernel operations in one netlink batch if the table
        can (``KernelTable.apply``), else one by one."""
        apply = getattr(self.kernel, "apply", None)
        if apply is None:
            for op, prefix, next_hop in operations:
                self.one(op, prefix, next_hop)
            return
        try:
            failed = apply(operations)
        except Exception as exc:  # the socket itself failed: try each on its own
            log.error("kernel batch failed (%s): one by one", exc)
            for op, prefix, next_hop in operations:
                self.one(op, prefix, next_hop)
            return
        routes = self.routes
        for index, (op, prefix, next_hop) in enumerate(operations):
            if failed and index in failed:
                message = f"kernel {op} {prefix} via {next_hop}: {failed[index]}"
                log.error(message)
                self.errors.append(message)
            elif op == "replace":
                routes[prefix] = next_hop
            else:
                routes.pop(prefix, None)

    def one(self, op: str, prefix: str, next_hop: str | None) -> None:
        try:
            if self.kernel is not None:
                if op == "replace":
                    self.kernel.replace(prefix, next_hop)
                else:
                    self.kernel.delete(prefix)
            if op == "replace":
                self.routes[prefix] = next_hop
            else:
                self.routes.pop(prefix, None)
        except Exception as exc:  # keep routing; report it in the state
            message = f"kernel {op} {prefix} via {next_hop}: {exc}"
            log.error(message)
            self.errors.append(message)

    def reconcile(self, loc_rib: dict, resolve: dict) -> tuple[bool, int]:
        """Put back Loc-RIB routes the kernel dropped: (whether every one is
        there now, how many were put back).

        When a link goes down the kernel deletes every route through it, BGP
        or not. If the link comes back before the hold timer expires, the
        session never dropped and the Loc-RIB never changed, so nothing
        would reinstall them: the router would blackhole its best paths.
        Called when a link comes up, as a routing daemon's kernel interface
        does."""
        if self.kernel is None:
            return True, 0
        try:
            actual = self.kernel.routes()
        except Exception as exc:  # keep routing; the next event retries
            log.error("reading the kernel table failed: %s", exc)
            return False, 0
        fixed, complete = 0, True
        for prefix, route in loc_rib.items():
            target = kernel_next_hop(resolve, kernel_target(route))
            if target is None or actual.get(prefix) == target:
                continue
            try:
                self.kernel.replace(prefix, target)
                self.routes[prefix] = target
                fixed += 1
            except Exception:  # the next hop's link is still down: the next event retries
                self.routes.pop(prefix, None)
                complete = False
        if fixed:
            log.info("reinstalled %d route(s) the kernel had dropped", fixed)
        return complete, fixed
