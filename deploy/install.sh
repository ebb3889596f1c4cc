#!/usr/bin/env bash
# Install edge on a terminal: Debian, Raspberry Pi OS or Ubuntu, arm64 or x86-64, Python 3.10+.
# Needs PyPI (and the distribution's package mirror, unless --no-apt) reachable once; afterwards
# everything runs offline. Idempotent: run it again to upgrade or repair; it keeps the config and
# the face library. Prints every step it takes.
#
#   sudo deploy/install.sh [--profile gate|attendance|verify|board] [--vendor-key vendor.pub]
#                          [--camera rgb=ID_PATH|ID_SERIAL]... [--serve] [--enable] [--no-apt] [--picamera]
#   sudo deploy/install.sh --uninstall [--purge]
#
# Layout: code and venv in $PREFIX (/opt/edge), config in $ETC (/etc/edge/edge.toml), device state
# in $EDGE_HOME (/var/lib/edge, mode 0700: models, face library, events, license), service user
# $EDGE_USER (edge) in the video and gpio groups, deploy/edge.service as
# /etc/systemd/system/edge.service, deploy/99-edge-camera.rules in /etc/udev/rules.d. --serve adds
# deploy/edge.service.d/serve.conf: the unit runs `edge serve --camera` (HTTP API + admin page +
# camera loop) instead of `edge run`.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX=${PREFIX:-/opt/edge}
ETC=${ETC:-/etc/edge}
EDGE_HOME=${EDGE_HOME:-/var/lib/edge}
EDGE_USER=${EDGE_USER:-edge}
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
UDEV_DIR=${UDEV_DIR:-/etc/udev/rules.d}
# where the vendor's licence key goes: root-owned in /etc/edge, where no EDGE_HOME or config can
# replace it (edge.license.SYSTEM_KEY); the one place to change if licensing moves it
VENDOR_KEY_DEST=${VENDOR_KEY_DEST:-/etc/edge/vendor.pub}
PROFILE=gate
VENDOR_KEY=${VENDOR_KEY:-}
ENABLE=0
APT=1
PICAMERA=0
SERVE=0
UNINSTALL=0
PURGE=0
CAMERAS=()

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
say() { printf 'edge-install: %s\n' "$*"; }
die() { printf 'edge-install: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --profile) PROFILE=${2:?--profile needs a name}; shift ;;
        --vendor-key) VENDOR_KEY=${2:?--vendor-key needs a file}; shift ;;
        --camera) CAMERAS+=("${2:?--camera needs ROLE=ID_PATH or ROLE=ID_SERIAL}"); shift ;;
        --enable) ENABLE=1 ;;
        --serve) SERVE=1 ;;
        --no-apt) APT=0 ;;
        --picamera) PICAMERA=1 ;;
        --uninstall) UNINSTALL=1 ;;
        --purge) UNINSTALL=1; PURGE=1 ;;
        -h|--help) usage 0 ;;
        *) echo "unknown option: $1" >&2; usage 2 ;;
    esac
    shift
done

[ "$(id -u)" = 0 ] || die "run as root (sudo $0 $*)"
systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

# ---------------------------------------------------------------------------------------------
if [ "$UNINSTALL" = 1 ]; then
    if systemd_running && systemctl list-unit-files edge.service >/dev/null 2>&1; then
        systemctl disable --now edge.service >/dev/null 2>&1 && say "stopped and disabled edge.service" || true
    fi
    for f in "$UNIT_DIR/edge.service" "$UNIT_DIR/edge.service.d/serve.conf" "$UDEV_DIR/99-edge-camera.rules"; do
        [ -e "$f" ] && rm -f "$f" && say "removed $f"
    done
    systemd_running && systemctl daemon-reload || true
    [ -d "$PREFIX" ] && rm -rf "$PREFIX" && say "removed $PREFIX (code and venv)"
    if [ "$PURGE" = 1 ]; then
        [ -d "$EDGE_HOME" ] && rm -rf "$EDGE_HOME" && say "purged $EDGE_HOME (face library, events, license, models)"
        [ -d "$ETC" ] && rm -rf "$ETC" && say "purged $ETC (config)"
        if id "$EDGE_USER" >/dev/null 2>&1; then userdel "$EDGE_USER" && say "removed user $EDGE_USER"; fi
    else
        # models are rebuilt by a new install; the library, events, queue and license stay
        [ -d "$EDGE_HOME/models" ] && rm -rf "$EDGE_HOME/models" && say "removed $EDGE_HOME/models"
        say "kept $EDGE_HOME (face library, events, license), $ETC and user $EDGE_USER: --purge removes them"
    fi
    say "uninstalled"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
case "$(uname -m)" in
    aarch64|arm64|x86_64|amd64) ;;
    *) die "unsupported CPU $(uname -m): edge needs arm64 (aarch64) or x86-64 (onnxruntime has no wheels for 32-bit ARM)" ;;
esac
[ -f "$SRC/config/$PROFILE.toml" ] || die "no profile $PROFILE (config/*.toml: $(cd "$SRC/config" && ls *.toml | sed 's/\.toml//' | tr '\n' ' '))"
[ -z "$VENDOR_KEY" ] || [ -f "$VENDOR_KEY" ] || die "vendor key $VENDOR_KEY does not exist"
[ -f /etc/os-release ] && . /etc/os-release && say "system: ${PRETTY_NAME:-unknown}, $(uname -m)"

# Python with venv: from the distribution (Debian 12 / Pi OS bookworm: 3.11; Ubuntu 22.04: 3.10)
need_pkgs=()
command -v python3 >/dev/null || need_pkgs+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || need_pkgs+=(python3-venv)
[ "$PICAMERA" = 1 ] && ! python3 -c 'import picamera2' 2>/dev/null && need_pkgs+=(python3-picamera2)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    [ "$APT" = 1 ] || die "missing ${need_pkgs[*]} and --no-apt was given"
    say "apt-get install ${need_pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null; }
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "Python 3.10+ is needed, found $(python3 -V)"

# service user and its groups; video and gpio exist on Raspberry Pi OS, not everywhere
for g in video gpio; do
    if ! getent group "$g" >/dev/null; then groupadd --system "$g"; say "created group $g"; fi
done
if id "$EDGE_USER" >/dev/null 2>&1; then
    say "user $EDGE_USER exists"
else
    useradd --system --home-dir "$EDGE_HOME" --no-create-home --shell /usr/sbin/nologin --user-group "$EDGE_USER"
    say "created system user $EDGE_USER"
fi
usermod -a -G video,gpio "$EDGE_USER"

# code: a copy of this checkout's package, then a venv with it installed (not editable: the
# service must not depend on the checkout it was installed from)
mkdir -p "$PREFIX/share" "$ETC" "$EDGE_HOME"
rm -rf "$PREFIX/src.new"
mkdir -p "$PREFIX/src.new"
(cd "$SRC" && tar -cf - --exclude=.venv --exclude=.edge-home --exclude='*.egg-info' --exclude=__pycache__ \
    --exclude=.git pyproject.toml README.md edge edge_tools config deploy models) | tar -xf - -C "$PREFIX/src.new"
rm -rf "$PREFIX/src" && mv "$PREFIX/src.new" "$PREFIX/src"
cp -r "$PREFIX/src/config" "$PREFIX/src/README.md" "$PREFIX/share/"
say "copied the code to $PREFIX/src"
if [ -x "$PREFIX/venv/bin/python" ] && "$PREFIX/venv/bin/python" -c 'import sys' 2>/dev/null; then
    say "venv $PREFIX/venv exists"
else
    venv_opts=()
    [ "$PICAMERA" = 1 ] && venv_opts+=(--system-site-packages)   # picamera2 comes from apt
    python3 -m venv "${venv_opts[@]}" "$PREFIX/venv"
    say "created venv $PREFIX/venv ($(python3 -V))"
fi
"$PREFIX/venv/bin/pip" install -q --disable-pip-version-check --upgrade pip
say "pip install edge-face[build,io,serve] (aarch64 and x86-64 wheels from PyPI)"
"$PREFIX/venv/bin/pip" install -q --disable-pip-version-check "$PREFIX/src[build,io,serve]"
# the same version number from a changed checkout: replace the package itself, not its dependencies
"$PREFIX/venv/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall "$PREFIX/src"
"$PREFIX/venv/bin/python" -m compileall -q "$PREFIX/venv/lib" >/dev/null || true   # read-only root: no caches later
"$PREFIX/venv/bin/pip" freeze --disable-pip-version-check | grep -iE '^(edge-face|onnxruntime|numpy|opencv|faiss|cryptography|onnx)[=-]' \
    | sed 's/^/edge-install:   /'

# config: the profile, once; an edited /etc/edge/edge.toml is never overwritten
if [ -f "$ETC/edge.toml" ]; then
    say "kept $ETC/edge.toml"
else
    cp "$SRC/config/$PROFILE.toml" "$ETC/edge.toml"
    chmod 0644 "$ETC/edge.toml"
    say "wrote $ETC/edge.toml (profile $PROFILE)"
fi

# device state: personal data (templates, face crops), readable by the service user only
mkdir -p "$EDGE_HOME/license"
if [ -n "$VENDOR_KEY" ]; then
    mkdir -p "$(dirname "$VENDOR_KEY_DEST")"
    install -o root -g root -m 0644 "$VENDOR_KEY" "$VENDOR_KEY_DEST"
    say "installed the vendor key as $VENDOR_KEY_DEST: licensing is on"
fi
chown -R "$EDGE_USER:$EDGE_USER" "$EDGE_HOME"
chmod 0700 "$EDGE_HOME"
# what writes into the service's own directory runs as the service user: a root process there
# could be led through a symlink the service account planted to write anywhere
as_service() { runuser -u "$EDGE_USER" -- env HOME="$EDGE_HOME" EDGE_HOME="$EDGE_HOME" "$@"; }
say "building the model pack in $EDGE_HOME/models as $EDGE_USER (sha256-checked; skipped when up to date)"
as_service "$PREFIX/venv/bin/edge" --json models build >/dev/null \
    || die "edge models build failed: run EDGE_HOME=$EDGE_HOME $PREFIX/venv/bin/edge models build to see why"
precision=$("$PREFIX/venv/bin/python" -c 'import sys; from edge.config import load; print(load(sys.argv[1]).precision)' \
    "$ETC/edge.toml") || die "$ETC/edge.toml does not load: fix it (edge --config $ETC/edge.toml doctor says why)"
if [ "$precision" = int8 ]; then
    # the calibration photos are the demo photos (face_recognition's, from PyPI) on a device
    say "the config runs int8 models: edge models quantize (calibrated on the demo photos)"
    as_service "$PREFIX/venv/bin/edge" --json --config "$ETC/edge.toml" models quantize --quiet >/dev/null \
        || die "edge models quantize failed: run EDGE_HOME=$EDGE_HOME $PREFIX/venv/bin/edge --config $ETC/edge.toml models quantize"
fi
chown -R "$EDGE_USER:$EDGE_USER" "$EDGE_HOME"
chmod 0700 "$EDGE_HOME"
say "$EDGE_HOME: owner $EDGE_USER, mode 0700"

# systemd unit and udev rule
mkdir -p "$UNIT_DIR" "$UDEV_DIR"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@EDGE_HOME@|$EDGE_HOME|g" -e "s|@CONFIG@|$ETC/edge.toml|g" \
    -e "s|@USER@|$EDGE_USER|g" "$SRC/deploy/edge.service" > "$UNIT_DIR/edge.service.new"
mv "$UNIT_DIR/edge.service.new" "$UNIT_DIR/edge.service"
say "wrote $UNIT_DIR/edge.service"
dropin="$UNIT_DIR/edge.service.d/serve.conf"
if [ "$SERVE" = 1 ]; then
    mkdir -p "$UNIT_DIR/edge.service.d"
    sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@CONFIG@|$ETC/edge.toml|g" "$SRC/deploy/edge.service.d/serve.conf" > "$dropin.new"
    mv "$dropin.new" "$dropin"
    say "wrote $dropin: the service runs edge serve --camera (set the admin password: edge admin set-password)"
elif [ -f "$dropin" ]; then
    say "kept $dropin (the service runs edge serve --camera; delete it to run edge run)"
fi
rules="$UDEV_DIR/99-edge-camera.rules"
roles=""
[ -f "$rules" ] && roles=$(sed -n '/^# edge-roles/,$p' "$rules" | tail -n +2)   # keep earlier --camera roles
for spec in "${CAMERAS[@]+"${CAMERAS[@]}"}"; do
    role=${spec%%=*}; id=${spec#*=}
    [[ "$role" =~ ^[a-z0-9_]+$ && -n "$id" && "$id" != "$spec" && "$id" != *'"'* ]] || die "--camera $spec: use ROLE=ID_PATH or ROLE=ID_SERIAL"
    key=ID_SERIAL; case "$id" in platform-*|pci-*|usb-*) key=ID_PATH ;; esac
    roles=$(printf '%s\n' "$roles" | grep -v "SYMLINK+=\"edge-camera-$role\"" || true)
    roles=$(printf '%s\nSUBSYSTEM=="video4linux", ATTR{index}=="0", ENV{%s}=="%s", SYMLINK+="edge-camera-%s"' "$roles" "$key" "$id" "$role")
    say "camera role $role: $key == $id -> /dev/edge-camera-$role"
done
{ cat "$SRC/deploy/99-edge-camera.rules"; printf '%s\n' "$roles" | sed '/^$/d'; } > "$rules"
say "wrote $rules"
command -v udevadm >/dev/null && [ -d /run/udev ] && udevadm control --reload && udevadm trigger --subsystem-match=video4linux || true

if systemd_running; then
    systemctl daemon-reload
    if [ "$ENABLE" = 1 ]; then
        systemctl enable edge.service >/dev/null 2>&1
        systemctl restart edge.service
        say "enabled and (re)started edge.service: journalctl -u edge -f"
    else
        systemctl is-active -q edge.service && systemctl restart edge.service && say "restarted edge.service"
        say "start at boot with: systemctl enable --now edge"
    fi
else
    say "systemd is not running here (chroot or container): the unit is installed; start it on the device"
fi
say "done. Check the device with: sudo -u $EDGE_USER EDGE_HOME=$EDGE_HOME $PREFIX/venv/bin/edge doctor"
