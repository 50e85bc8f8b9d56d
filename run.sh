#!/usr/bin/env bash
# The two commands of the quick start:
#   sudo ./run.sh demo   peering and depeering demo, outcome printed
#   sudo ./run.sh test   the whole test suite (unit + emulation + scenarios)
# Each installs what it needs first (scripts/setup.sh, idempotent); the tests
# also need BIRD and FRR (scripts/setup-routers.sh) and PyPy's environment for
# the zygote-pypy model (scripts/setup-pypy.sh), which the demo does not.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
what="${1:-}"
shift || true
case "$what" in
    demo) "$ROOT/scripts/setup.sh"; exec "$ROOT/.venv/bin/testbed" run depeering_fallback --report "$ROOT/reports/demo.html" "$@" ;;
    # Two pytest-xdist workers by default (TESTBED_TEST_WORKERS; 0 runs the
    # suite in this one process), each taking whole test modules (a
    # module's lab is shared by its tests); the few tests of host-wide
    # settings run while no lab of the other worker does (host_exclusive
    # in tests/conftest.py).
    test) "$ROOT/scripts/setup.sh"; "$ROOT/scripts/setup-routers.sh"; "$ROOT/scripts/setup-pypy.sh"; exec "$ROOT/.venv/bin/python" -m pytest -n "${TESTBED_TEST_WORKERS:-2}" --testbed-report "$ROOT/test-artifacts/reports" --testbed-report-check "$@" ;;
    *) echo "usage: sudo ./run.sh demo|test [args]" >&2; exit 2 ;;
esac
