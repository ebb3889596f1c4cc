#!/usr/bin/env bash
# The install proof: deploy/install.sh run twice in a fresh Debian root (debootstrap, chroot),
# then what a device would do at boot: the unit checked by `systemd-analyze verify`, and the
# unit's own ExecStart run as the service user with a NOTIFY_SOCKET, which must say READY=1 and
# send watchdog pings; then --uninstall (keeps the library) and --purge. Not part of CI
# (minutes: it downloads the wheels). Output quoted in the README ("On the board").
#
#   sudo deploy/install-proof.sh [WORKDIR]    (default /var/tmp/edge-install; ARCH=arm64 for an arm64 root)
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK=${1:-/var/tmp/edge-install}
ARCH=${ARCH:-amd64}
ROOT=$WORK/root-$ARCH
MIRROR=${MIRROR:-http://deb.debian.org/debian}
LOG=$WORK/install-proof.log
mkdir -p "$WORK"
exec > >(tee "$LOG") 2>&1
step() { printf '\n=== %s  [%s]\n' "$*" "$(date -u +%H:%M:%S)"; }
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ${PIP_CERT:+PIP_CERT=/etc/ssl/certs/edge-proof-host-ca.crt} "$@"; }
fail() { echo "FAILED: $*"; exit 1; }

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
step "checkout $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$SRC" diff --quiet 2>/dev/null || echo '+changes')"
if [ ! -x "$ROOT/usr/bin/python3" ]; then
    # fresh Debian: python3 without venv (install.sh adds it), systemd for `systemd-analyze verify`
    step "debootstrap bookworm $ARCH into $ROOT"
    debootstrap --arch="$ARCH" --variant=minbase --include=python3,ca-certificates,systemd,systemd-sysv,dbus,procps \
        bookworm "$ROOT" "$MIRROR"
fi
cleanup() { for m in dev/pts dev sys proc; do mountpoint -q "$ROOT/$m" && umount -l "$ROOT/$m"; done; return 0; }
trap cleanup EXIT
for m in proc sys dev dev/pts; do mkdir -p "$ROOT/$m"; mountpoint -q "$ROOT/$m" || mount --bind "/$m" "$ROOT/$m"; done
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# a network behind a TLS-inspecting proxy: the root trusts what this host trusts (PIP_CERT)
if [ -n "${PIP_CERT:-}" ]; then cp -L "$PIP_CERT" "$ROOT/etc/ssl/certs/edge-proof-host-ca.crt"; fi
rm -rf "$ROOT/src/edge"; mkdir -p "$ROOT/src/edge"
(cd "$SRC" && tar -cf - --exclude=.venv --exclude=.edge-home --exclude='*.egg-info' --exclude=__pycache__ \
    --exclude=.git .) | tar -xf - -C "$ROOT/src/edge"

step "install.sh, first run"
time in_root bash /src/edge/deploy/install.sh --profile gate --camera rgb=platform-xhci-hcd.0-usb-0:1:1.0
step "install.sh, second run (idempotent)"
echo "# edited by the installer of this site" >> "$ROOT/etc/edge/edge.toml"
time in_root bash /src/edge/deploy/install.sh --profile gate --camera nir=Sonix_USB_2.0_Camera_SN0001

step "what the two runs left"
in_root id edge
in_root stat -c '%n %U:%G %a' /var/lib/edge /var/lib/edge/models /etc/edge/edge.toml /etc/systemd/system/edge.service
tail -n 1 "$ROOT/etc/edge/edge.toml" | grep -q "edited by the installer" || fail "the second run overwrote /etc/edge/edge.toml"
[ "$(stat -c %a "$ROOT/var/lib/edge")" = 700 ] || fail "/var/lib/edge is not 0700"
in_root id -nG edge | tr ' ' '\n' | grep -qx video || fail "edge is not in group video"
in_root id -nG edge | tr ' ' '\n' | grep -qx gpio || fail "edge is not in group gpio"
[ "$(grep -c '^edge:' "$ROOT/etc/passwd")" = 1 ] || fail "more than one user edge"
grep 'edge-camera-' "$ROOT/etc/udev/rules.d/99-edge-camera.rules" | grep -v '^#'
[ "$(grep -v '^#' "$ROOT/etc/udev/rules.d/99-edge-camera.rules" | grep -c 'edge-camera-')" = 2 ] || fail "camera roles not kept"
in_root ls /opt/edge

step "systemd-analyze verify (inside the root, where ExecStart's paths exist)"
in_root systemd-analyze verify /etc/systemd/system/edge.service && echo "verify: passed (no output)"
in_root systemctl enable edge.service 2>&1 | sed 's/^/  /'
in_root systemctl is-enabled edge.service

step "the unit's ExecStart, as the unit's user, with the unit's environment and a NOTIFY_SOCKET"
exec_start=$(sed -n 's/^ExecStart=//p' "$ROOT/etc/systemd/system/edge.service")
envs=$(sed -n 's/^Environment=//p' "$ROOT/etc/systemd/system/edge.service" | tr '\n' ' ')
echo "ExecStart=$exec_start"
echo "Environment=$envs"
rm -f "$ROOT/run/edge-notify" "$WORK/notify.txt"
in_root python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind("/run/edge-notify")
import os; os.chmod("/run/edge-notify", 0o777)
s.settimeout(60); t0 = time.monotonic(); out = open("/run/edge-notify.txt", "w")
while time.monotonic() - t0 < 25:
    try: m = s.recv(4096).decode()
    except socket.timeout: break
    print(f"{time.monotonic() - t0:6.2f} s  {m!r}", file=out, flush=True)
' &
listener=$!
sleep 2
# shellcheck disable=SC2086
in_root setpriv --reuid=edge --regid=edge --init-groups env $envs NOTIFY_SOCKET=/run/edge-notify \
    WATCHDOG_USEC=4000000 timeout -s TERM 20 $exec_start > "$WORK/run.out" 2> "$WORK/run.err" || true
wait $listener || true
cat "$ROOT/run/edge-notify.txt"
echo "--- stdout (summary at SIGTERM)"; cat "$WORK/run.out"
echo "--- stderr (last lines)"; tail -n 5 "$WORK/run.err"
grep -q "READY=1" "$ROOT/run/edge-notify.txt" || fail "no READY=1"
[ "$(grep -c "WATCHDOG=1" "$ROOT/run/edge-notify.txt")" -ge 3 ] || fail "fewer than 3 watchdog pings"

if command -v systemd-nspawn >/dev/null && [ "${BOOT:-1}" = 1 ]; then
    step "boot the root with systemd as PID 1 (systemd-nspawn): the service under systemd, then a hung loop"
    # the test hook hangs the loop's thread after 20 s; WatchdogSec=10 for a short proof
    mkdir -p "$ROOT/etc/systemd/system/edge.service.d"
    printf '[Service]\nEnvironment=EDGE_TEST_LOOP_FAULT=hang:20\nWatchdogSec=10\n' \
        > "$ROOT/etc/systemd/system/edge.service.d/proof.conf"
    cat > "$ROOT/etc/systemd/system/edge-proof.service" <<'UNIT'
[Unit]
Description=edge install proof: report on edge.service, then power off
After=edge.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'sleep 75; { systemctl show edge -p ActiveState -p SubState -p Result -p NRestarts -p Type -p WatchdogUSec; journalctl -u edge --no-pager -o short-monotonic | grep -v "cap_v4l\\|VIDEOIO" | tail -n 25; } > /root/edge-proof.txt 2>&1; systemctl poweroff'
[Install]
WantedBy=multi-user.target
UNIT
    in_root systemctl enable edge-proof.service >/dev/null 2>&1
    rm -f "$ROOT/root/edge-proof.txt"
    cleanup
    timeout 180 systemd-nspawn -q --keep-unit --register=no -D "$ROOT" -b </dev/null > "$WORK/nspawn.log" 2>&1 || true
    for m in proc sys dev dev/pts; do mountpoint -q "$ROOT/$m" || mount --bind "/$m" "$ROOT/$m"; done
    cat "$ROOT/root/edge-proof.txt" || fail "the booted root wrote no report"
    grep -q "NRestarts=[1-9]" "$ROOT/root/edge-proof.txt" || fail "systemd did not restart the hung service"
    grep -qi "watchdog timeout" "$ROOT/root/edge-proof.txt" || fail "no watchdog timeout in the journal"
    rm -rf "$ROOT/etc/systemd/system/edge.service.d" "$ROOT/etc/systemd/system/edge-proof.service" \
        "$ROOT/etc/systemd/system/multi-user.target.wants/edge-proof.service"
fi

step "uninstall keeps the face library; --purge removes everything"
mkdir -p "$ROOT/var/lib/edge/db" && echo library > "$ROOT/var/lib/edge/db/marker"
in_root bash /src/edge/deploy/install.sh --uninstall
[ -f "$ROOT/var/lib/edge/db/marker" ] || fail "uninstall removed the library"
[ ! -e "$ROOT/opt/edge" ] && [ ! -e "$ROOT/etc/systemd/system/edge.service" ] || fail "uninstall left code or unit"
in_root bash /src/edge/deploy/install.sh --purge
[ ! -e "$ROOT/var/lib/edge" ] && [ ! -e "$ROOT/etc/edge" ] && ! grep -q '^edge:' "$ROOT/etc/passwd" || fail "purge left data"
step "install proof passed"
