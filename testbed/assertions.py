"""The assertions scenarios use, under their public name:
``from testbed.assertions import assert_as_path, ...`` (they live in
``testbed.testing.assertions``)."""
from testbed.testing.assertions import *  # noqa: F401,F403
from testbed.testing.assertions import __all__  # noqa: F401
