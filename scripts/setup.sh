#!/usr/bin/env bash
# Install what the testbed needs, idempotently: Debian/Ubuntu packages
# (mnexec from 'mininet', iproute2, bridge-utils, iputils-ping, python3-venv, graphviz's
# 'dot' for topology pictures, chromium and its driver for the browser
# checks of the HTML reports) and a
# virtualenv in .venv with the Python dependencies pinned in pyproject.toml.
# Safe to run again: it only does work that is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TESTBED_VENV:-$ROOT/.venv}"
PY="${TESTBED_PYTHON:-/usr/bin/python3}"

if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root (sudo): labs need network namespaces" >&2
    exit 1
fi

need=()
command -v mnexec >/dev/null || need+=(mininet)
command -v ip >/dev/null && command -v tc >/dev/null || need+=(iproute2)
command -v brctl >/dev/null || need+=(bridge-utils)
command -v unshare >/dev/null || need+=(util-linux)
# The Mininet CLI's ping and pingall (the README's examples) run ping(8) in the nodes.
command -v ping >/dev/null || need+=(iputils-ping)
"$PY" -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
command -v dot >/dev/null || need+=(graphviz)
# The browser checks of the HTML reports: Debian's chromium and its driver.
# Ubuntu's packages of them are snap wrappers, which need snapd; there the
# Chrome and chromedriver already on the PATH are used (GitHub's runners
# have both), so nothing is installed.
if ! command -v chromedriver >/dev/null && grep -qx 'ID=debian' /etc/os-release 2>/dev/null; then
    need+=(chromium chromium-driver)
fi
if [ "${#need[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # --no-install-recommends: mininet recommends openvswitch-switch, which
    # the testbed does not use (Linux bridges only).
    apt-get install -y -qq --no-install-recommends "${need[@]}" python3-pip >/dev/null
fi

stamp="$VENV/.pyproject.sha256"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: creating the virtualenv $VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip
    # setuptools warns about every editable install (a page of asterisks on
    # a newcomer's first run); the install is meant to be editable.
    PYTHONWARNINGS="ignore:Editable installation" \
        "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT"
    echo "$want" > "$stamp"
fi
