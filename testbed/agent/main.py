"""How a route agent starts: ``main`` for ``python -m testbed.agent
<agent.json>`` (the exec process model: ExaBGP's pipes on stdin/stdout),
``embedded`` for an agent inside a zygote speaker (a thread of it,
with the transport the speaker gives, run without signal handlers). Both read the
agent's JSON configuration, set up its log, open the kernel table of the
namespace they run in and run the event loop until ExaBGP lets go.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from testbed.agent.agent import Agent
from testbed.agent.transport import NonBlockingOutput, TextTransport

log = logging.getLogger("testbed.agent.agent")
LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(message)s"


def load_config(path: str) -> dict:
    with open(path) as handle:
        return json.load(handle)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    config = load_config(argv[0])
    logging.basicConfig(filename=config.get("log"), level=logging.INFO, format=LOG_FORMAT, datefmt="%H:%M:%S")
    from testbed.linux.routes import KernelTable

    transport = TextTransport(NonBlockingOutput(sys.stdout.fileno()), input_fd=0)
    agent = Agent(config, kernel=KernelTable(), transport=transport)
    log.info("agent of router %s (AS%s) started, pid %d", agent.name, config["asn"], os.getpid())
    agent.run()
    return 0


def embedded(config: dict, transport) -> Agent:
    """The agent of ``config`` for a thread of a zygote speaker, over
    ``transport``; the caller runs it with ``agent.run(signals=False)``
    (only a process's main thread may install signal handlers; the
    speaker's own stop it, and it ends when ExaBGP closes its pipe)."""
    logger = logging.getLogger("testbed")
    if config.get("log") and not logger.handlers:
        handler = logging.FileHandler(config["log"])
        handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    from testbed.linux.routes import KernelTable

    agent = Agent(config, kernel=KernelTable(), transport=transport)
    log.info("agent of router %s (AS%s) started in thread of pid %d", agent.name, config["asn"], os.getpid())
    return agent


def config_path(argv) -> str:
    """The configuration file of an agent command line
    (``<python> -m testbed.agent <agent.json>``, a list or a shell string);
    ValueError for any other command."""
    if isinstance(argv, str):
        import shlex

        argv = shlex.split(argv)
    argv = list(argv)
    if len(argv) != 4 or argv[1:3] != ["-m", "testbed.agent"]:
        raise ValueError(f"not a route agent's command line (<python> -m testbed.agent <agent.json>): {argv!r}")
    return argv[3]
