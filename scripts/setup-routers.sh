#!/usr/bin/env bash
# Install the other router daemons the tests run beside ExaBGP: Debian's
# bird2 (BIRD 2) and frr (FRRouting), idempotently. The demo does not need
# them; `./run.sh test` runs this after setup.sh. Both packages start a
# system daemon on install: this script keeps them from starting (a
# policy-rc.d that refuses every start, only for the install and only if
# none is there), then leaves no service enabled or running (systemctl
# disable/stop/mask when systemd runs; the packages' own daemons, found by
# their pid files, stopped otherwise). Labs start their own daemons in
# their namespaces with their own state directories.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
    echo "setup-routers: run as root (sudo)" >&2
    exit 1
fi
need=()
command -v bird >/dev/null && command -v birdc >/dev/null || need+=(bird2)
[ -x /usr/lib/frr/bgpd ] && command -v vtysh >/dev/null || need+=(frr)
if [ "${#need[@]}" -gt 0 ]; then
    echo "setup-routers: installing Debian packages: ${need[*]}"
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    trap 'if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
        || { apt-get update -qq; apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi
# No system service enabled or running, whatever started them.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    for unit in bird.service frr.service; do
        if systemctl list-unit-files "$unit" >/dev/null 2>&1; then
            systemctl stop "$unit" 2>/dev/null || true
            systemctl disable "$unit" 2>/dev/null || true
            systemctl mask "$unit" >/dev/null 2>&1 || true
        fi
    done
else
    # No systemd: the SysV links are what would start them at boot.
    for svc in bird frr; do
        if [ -x "/etc/init.d/$svc" ] && command -v update-rc.d >/dev/null; then
            update-rc.d "$svc" disable >/dev/null 2>&1 || true
        fi
    done
fi
# The packages' own daemons write their pid files here; labs' never do.
for pidfile in /run/bird/bird.pid /run/frr/*.pid; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
done
