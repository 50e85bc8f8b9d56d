#!/usr/bin/env bash
# The PyPy environment of the zygote-pypy process model (testbed.speaker.pypy),
# idempotently: Debian's pypy3 and pypy3-venv, and a virtualenv in .venv-pypy
# with what a speaker imports, at the versions pinned in pyproject.toml
# (ExaBGP and pyroute2; the testbed's own code is found through PYTHONPATH,
# which the harness sets). About 20 s on a fresh machine; nothing when done.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TESTBED_PYPY_VENV:-$ROOT/.venv-pypy}"
SPEAKER_PACKAGES=(exabgp pyroute2)

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-pypy: run as root (sudo)" >&2
    exit 1
fi

need=()
command -v pypy3 >/dev/null || need+=(pypy3)
pypy3 -c 'import ensurepip, venv' 2>/dev/null || need+=(pypy3-venv)
if [ "${#need[@]}" -gt 0 ]; then
    echo "setup-pypy: installing Debian packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The pins, read from pyproject.toml (the one place they are written).
pins=()
for package in "${SPEAKER_PACKAGES[@]}"; do
    pin="$(grep -oE "\"$package==[^\";]+\"" "$ROOT/pyproject.toml" | head -n1 | tr -d '"')"
    if [ -z "$pin" ]; then
        echo "setup-pypy: no exact pin of $package in $ROOT/pyproject.toml" >&2
        exit 1
    fi
    pins+=("$pin")
done

stamp="$VENV/.pins"
want="$(pypy3 --version 2>&1 | tr '\n' ' ') ${pins[*]}"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup-pypy: creating the PyPy virtualenv $VENV (${pins[*]})"
    if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
        echo "setup-pypy: $VENV exists and is no virtualenv; not touching it" >&2
        exit 1
    fi
    rm -rf "$VENV"
    pypy3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${pins[@]}"
    echo "$want" > "$stamp"
fi
