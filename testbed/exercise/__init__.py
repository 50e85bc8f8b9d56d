"""Workshop exercises: a lab with a gap, an answer as data, criteria that
grade it with the public assertions (``testbed.assertions``).

``criterion`` is the decorator an exercise's ``criteria.py`` uses (and
``assert_crosses`` a one-shot traceroute check beside the assertions); the
rest is in ``model`` (the file layout), ``answer`` (answer files),
``workbench`` (an exercise's lab), ``harness`` (the background process of
``testbed exercise start``), ``grade`` and ``report`` (grading many
answers) and ``cli`` (the ``testbed exercise`` commands).
"""

from testbed.exercise.model import assert_crosses, criterion  # noqa: F401
