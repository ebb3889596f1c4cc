#!/usr/bin/env bash
# Install edge on a Raspberry Pi / RK3399 / RK3588 terminal (Debian-based, Python 3.10+).
# Needs only the package index (PyPI) to be reachable once; afterwards everything is offline.
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX=${PREFIX:-/opt/edge}
export EDGE_HOME=${EDGE_HOME:-/var/lib/edge}
id edge >/dev/null 2>&1 || useradd --system --home "$EDGE_HOME" --shell /usr/sbin/nologin edge
mkdir -p "$PREFIX" "$EDGE_HOME" /etc/edge
cp -r "$SRC"/. "$PREFIX"/
cd "$PREFIX"
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[build,io]'
# Raspberry Pi camera: apt install python3-picamera2 and create the venv with --system-site-packages
.venv/bin/edge models build
[ -f /etc/edge/edge.toml ] || cp config/gate.toml /etc/edge/edge.toml
if command -v systemctl >/dev/null; then
    cp deploy/edge.service /etc/systemd/system/edge.service
    systemctl daemon-reload
    echo "enable the camera loop with: systemctl enable --now edge"
fi
# licensing: a vendor who ships this terminal installs its public key (see README "Licensing")
# into /etc/edge (root-owned), where no EDGE_HOME or config can replace it
if [ -n "${VENDOR_KEY:-}" ]; then
    install -o root -g root -m 644 "$VENDOR_KEY" /etc/edge/vendor.pub
    mkdir -p "$EDGE_HOME/license"
fi
chown -R edge: "$EDGE_HOME"
chmod 700 "$EDGE_HOME"   # templates and face crops are personal data

echo "installed into $PREFIX; try: EDGE_HOME=$EDGE_HOME $PREFIX/.venv/bin/edge demo"
