"""The live view of a running lab (``testbed up TOPOLOGY --web``).

``model`` is the page's state kept from what the lab says (pure: records
and agents' answers in, messages for the page out) and the access checks;
``follow`` follows the route agents' ``watch`` answers over control
sockets of its own; ``server`` serves the page, pushes the messages as
server-sent events and runs the instructor's actions. ``LiveView`` in
``server`` ties them to a lab and its recorder.
"""

from .server import LiveView

__all__ = ["LiveView"]
