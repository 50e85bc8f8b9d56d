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
    # TESTBED_TEST_WORKERS=2: two pytest-xdist workers, each taking whole
    # test modules (a module's lab is shared by its tests). Not the default
    # yet: lifecycle tests' 5 s clean-up bounds failed now and then with two
    # workers on a loaded 2-core machine.
    test) "$ROOT/scripts/setup.sh"; "$ROOT/scripts/setup-routers.sh"; "$ROOT/scripts/setup-pypy.sh"; exec "$ROOT/.venv/bin/python" -m pytest -n "${TESTBED_TEST_WORKERS:-0}" --testbed-report "$ROOT/test-artifacts/reports" --testbed-report-check "$@" ;;
    *) echo "usage: sudo ./run.sh demo|test [args]" >&2; exit 2 ;;
esac
