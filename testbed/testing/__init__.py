"""What scenarios and tests use: BGP-aware assertions and the pytest plugin
(the ``lab`` and ``report`` fixtures)."""
