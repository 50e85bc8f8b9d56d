"""A running lab (``Lab``), its control connections to the agents and its
cleanup."""
from testbed.lab.lab import Lab

__all__ = ["Lab"]
