"""The route agent's event loop: one thread, one selector, no other threads.

``run`` waits on the agent's transport (what ExaBGP says), its control
socket (``testbed.agent.control.ControlServer``; a connection is also
watched for room while replies wait for its client to read) and, when the agent
writes kernel routes, the namespace's link events
(``testbed.linux.routes.LinkWatch``); between events it releases held
announcements and ends the update delay on time (``testbed.agent.schedule``
through the agent). It returns when ExaBGP closes the transport or, with
``signals``, on SIGTERM/SIGINT; only a process's main thread may install
those handlers, so an agent run as a thread of its speaker passes
``signals=False`` and is stopped by its ``stopping`` flag or end of file.
"""

from __future__ import annotations

import logging
import selectors
import signal
import time

from testbed.agent.control import ControlServer

log = logging.getLogger("testbed.agent.agent")


def run(agent, signals: bool = True) -> None:
    """Serve ``agent`` until ExaBGP closes its transport or it is stopped."""
    transport = agent.transport
    server = ControlServer(agent.config["control_socket"], agent)
    selector = selectors.DefaultSelector()
    selector.register(transport.input_fd, selectors.EVENT_READ, "exabgp")
    selector.register(server.sock, selectors.EVENT_READ, "server")
    links = link_watch() if agent.kernel is not None else None
    if links is not None:
        selector.register(links, selectors.EVENT_READ, "links")

    for prefix in agent.config.get("prefixes", []):
        agent.apply(agent.engine.originate(prefix))

    if signals:
        def stop(*_):
            agent.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    wait = agent.release() if agent.schedule.held_order else None
    writing = False
    try:
        while not agent.stopping:
            backlog = transport.backlog()
            if backlog is not None and bool(backlog) != writing:
                # Wait for room in the command pipe while reading on: ExaBGP
                # may itself be blocked writing events to us.
                writing = bool(backlog)
                if writing:
                    selector.register(transport.output_fd, selectors.EVENT_WRITE, "output")
                else:
                    selector.unregister(transport.output_fd)
            if agent.schedule.delaying:
                left = agent.check_update_delay(time.monotonic())
                if left is None:
                    wait = agent.release() if agent.schedule.held_order else None
                else:
                    wait = left if wait is None else min(wait, left)
            for key, mask in selector.select(timeout=1.0 if wait is None else min(1.0, wait)):
                if key.data == "output":
                    transport.flush()
                elif key.data == "exabgp":
                    items = transport.read()
                    if items is None:
                        log.info("ExaBGP closed our stdin: exiting")
                        agent.stopping = True
                        break
                    agent.receive(items)
                elif key.data == "links":
                    # A link that came up may need the routes the kernel
                    # dropped with it; a reconciliation that could not put
                    # every one back tries again on the next event.
                    if links.came_up() or agent.reconcile_again:
                        agent.reconcile_again = not agent.reconcile_kernel()
                elif key.data == "server":
                    selector.register(server.accept(), selectors.EVENT_READ, "client")
                else:
                    conn = key.fileobj
                    alive = server.writable(conn) if mask & selectors.EVENT_WRITE else True
                    if alive and mask & selectors.EVENT_READ:
                        alive = server.readable(conn)
                    if not alive:
                        selector.unregister(conn)
                        server.drop(conn)
            wait = agent.release() if agent.schedule.held_order else None
            server.answer_watchers()
            # Replies the client has not read yet wait in the server, never
            # in a blocking write: read on (up to a bound), write when there is room.
            for conn, events in server.interest():
                selector.modify(conn, events, "client")
    finally:
        selector.close()
        server.close()
        if links is not None:
            links.close()


def link_watch():
    """A ``testbed.linux.routes.LinkWatch`` of this namespace, or None if netlink
    refuses one."""
    from testbed.linux.routes import LinkWatch

    try:
        return LinkWatch()
    except OSError as exc:
        log.error("cannot watch link events (%s): routes dropped by a link flap stay dropped", exc)
        return None
