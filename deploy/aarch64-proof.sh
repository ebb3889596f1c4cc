#!/usr/bin/env bash
# The aarch64 proof: a Debian arm64 root made with debootstrap, every arm64 binary in it run by
# qemu-aarch64-static through binfmt_misc, the project installed there exactly as
# deploy/install.sh installs it on a board (aarch64 wheels from PyPI, the model pack built
# inside), then `edge models build`, `make demo`'s recognition (decisions compared with this
# host's), the fast test tier and the recognition and pipeline tests, under emulation. Not part of CI: hours, not
# minutes (emulation is 10-50x slower). Its output is quoted in the README ("aarch64").
#
#   sudo deploy/aarch64-proof.sh [WORKDIR]      (default /var/tmp/edge-aarch64; root is kept for reruns)
#   SKIP_INSTALL=1 reuses an earlier run's install; TESTS and LFW_PEOPLE choose the tests (below)
#
# Needs: root, debootstrap, qemu-user-static (Debian packages), the package mirror and PyPI, and
# ../shared beside the checkout for the tests. Steps already done in WORKDIR are not repeated.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK=${1:-/var/tmp/edge-aarch64}
ROOT=$WORK/root
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}
SHARED=$(cd "$SRC/.." && pwd)/shared
LOG=$WORK/proof.log
mkdir -p "$WORK"
exec > >(tee -a "$LOG") 2>&1

step() { printf '\n=== %s  [%s]\n' "$*" "$(date -u +%H:%M:%S)"; }
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ${PIP_CERT:+PIP_CERT=/etc/ssl/certs/edge-proof-host-ca.crt} OMP_NUM_THREADS=1 "$@"; }

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
step "host $(uname -m), checkout $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$SRC" diff --quiet 2>/dev/null || echo '+changes')"

# binfmt_misc: lets the kernel hand every arm64 ELF in the root to qemu-aarch64-static (flag F:
# the interpreter is opened now, so it works inside the chroot without a copy there)
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
        || { echo "binfmt_misc cannot be mounted here: run the root with qemu-system-aarch64 instead" >&2; exit 1; }
fi
if ! grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null; then
    command -v update-binfmts >/dev/null && update-binfmts --enable qemu-aarch64 || true
fi
grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || { echo "qemu-aarch64 is not registered with binfmt_misc: apt-get install qemu-user-static binfmt-support" >&2; exit 1; }
grep -E '^(interpreter|flags)' /proc/sys/fs/binfmt_misc/qemu-aarch64

if [ ! -x "$ROOT/usr/bin/python3" ]; then
    step "debootstrap $SUITE arm64 into $ROOT"
    debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,ca-certificates,make,procps \
        "$SUITE" "$ROOT" "$MIRROR"
fi

cleanup() {
    umount "$ROOT/proc/cpuinfo" 2>/dev/null || true
    for m in src/shared dev/pts dev sys proc; do mountpoint -q "$ROOT/$m" && umount -l "$ROOT/$m"; done
    return 0
}
trap cleanup EXIT
for m in proc sys dev dev/pts; do
    mkdir -p "$ROOT/$m"; mountpoint -q "$ROOT/$m" || mount --bind "/$m" "$ROOT/$m"
done
# qemu-user shows arm64 programs this host's /proc/cpuinfo (x86); onnxruntime's cpuinfo library
# finds no ARM core in it and crashes at import (SIGSEGV). A recorded Raspberry Pi 4 cpuinfo
# (4x Cortex-A72) stands in for it; a real board has its own.
mount --bind "$SRC/tests/fixtures/devices/rpi4/proc/cpuinfo" "$ROOT/proc/cpuinfo"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# a network behind a TLS-inspecting proxy: the root trusts what this host trusts (PIP_CERT)
if [ -n "${PIP_CERT:-}" ]; then cp -L "$PIP_CERT" "$ROOT/etc/ssl/certs/edge-proof-host-ca.crt"; fi
step "inside: $(in_root uname -m), $(in_root python3 -c 'import platform; print(platform.machine(), platform.python_version(), platform.libc_ver())')"
in_root cat /etc/debian_version

# the checkout as committed plus uncommitted changes: exactly the files install.sh would see
rm -rf "$ROOT/src/edge"; mkdir -p "$ROOT/src/edge" "$ROOT/src/shared"
(cd "$SRC" && tar -cf - --exclude=.venv --exclude=.edge-home --exclude='*.egg-info' --exclude=__pycache__ \
    --exclude=.git .) | tar -xf - -C "$ROOT/src/edge"
if [ -d "$SHARED/faces" ]; then mountpoint -q "$ROOT/src/shared" || mount --bind -o ro "$SHARED" "$ROOT/src/shared"; fi

if [ "${SKIP_INSTALL:-0}" = 1 ] && [ -x "$ROOT/opt/edge/venv/bin/edge" ]; then
    step "deploy/install.sh skipped (SKIP_INSTALL=1): the install of an earlier run is used"
else
    step "deploy/install.sh inside the arm64 root"
    time in_root bash /src/edge/deploy/install.sh --no-apt --profile gate
fi

step "aarch64 wheel versions (pip freeze)"
in_root /opt/edge/venv/bin/pip freeze | tee "$WORK/aarch64-freeze.txt"
in_root /opt/edge/venv/bin/python - <<'EOF'
import platform, numpy, onnxruntime, cv2, faiss
print("machine", platform.machine())
print("onnxruntime", onnxruntime.__version__, onnxruntime.get_available_providers())
print("numpy", numpy.__version__, "opencv", cv2.__version__, "faiss", faiss.__version__)
EOF

step "edge models build (again: idempotent; sha256 of what was converted on arm64)"
time in_root env EDGE_HOME=/var/lib/edge /opt/edge/venv/bin/edge models build | tee "$WORK/aarch64-models.json"

step "make demo's recognition: edge demo"
time in_root env EDGE_HOME=/var/lib/edge /opt/edge/venv/bin/edge --json demo > "$WORK/aarch64-demo.json"
cat "$WORK/aarch64-demo.json" | head -n 40 | cut -c1-300
if [ -x "$SRC/.venv/bin/edge" ]; then
    step "the same demo on this $(uname -m) host, and the decisions compared"
    EDGE_HOME="$WORK/host-home" EDGE_MODELS_DIR="${EDGE_MODELS_DIR:-$SRC/.edge-home/models}" \
        "$SRC/.venv/bin/edge" --json demo > "$WORK/host-demo.json"
    python3 - "$WORK/aarch64-demo.json" "$WORK/host-demo.json" <<'EOF'
import json, sys
arm, x86 = (json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[1:3])
a = {r["photo"]: r for r in arm["results"]}
x = {r["photo"]: r for r in x86["results"]}
same = 0
print(f"{'photo':<28} {'aarch64':<18} {'x86-64':<18} same")
for p in sorted(x):
    ra, rx = a.get(p, {}), x[p]
    ok = ra.get("recognised") == rx.get("recognised")
    same += ok
    print(f"{p:<28} {str(ra.get('recognised')) + ' ' + str(ra.get('score')):<18} "
          f"{str(rx.get('recognised')) + ' ' + str(rx.get('score')):<18} {'yes' if ok else 'NO'}")
d = [abs(a[p]["score"] - x[p]["score"]) for p in x if a.get(p, {}).get("score") is not None and x[p].get("score") is not None]
print(f"same decisions: {same}/{len(x)}; largest score difference {max(d) if d else 0:.3f}")
EOF
fi

# TESTS picks the parts: unit (the fast tier), public (recognition on the public photos), scenes
# (the camera-loop tests), lfw (the lfw-dev test: 2,541 photos, about 4 hours here). With
# LFW_PEOPLE=N, lfw is instead `edge eval` on the first N lfw-dev people, on arm64 and on this
# host, compared: the same measurement on a part of the set, in minutes.
TESTS=${TESTS:-unit public scenes lfw}
want() { case " $TESTS " in *" $1 "*) return 0;; esac; return 1; }
# what the fast tier imports beyond the install's extras: pytest, httpx (FastAPI's TestClient),
# Pillow, matplotlib (the plots of edge eval)
in_root /opt/edge/venv/bin/pip install -q pytest httpx Pillow matplotlib
if want unit; then
    step "the fast test tier under emulation (tests/unit: no model pack, no photos)"
    time in_root sh -c 'cd /src/edge && EDGE_HOME=/var/lib/edge /opt/edge/venv/bin/python -m pytest -q \
        -p no:cacheprovider tests/unit' || true
fi
if [ -d "$ROOT/src/shared/faces/public" ]; then
    # named results (-v): a run cut short still says which tests passed
    if want public; then
        step "recognition tests on the public photos under emulation"
        time in_root sh -c 'cd /src/edge && EDGE_HOME=/var/lib/edge /opt/edge/venv/bin/python -m pytest -v \
            -p no:cacheprovider tests/test_recognition.py -k "not lfw"' || true
    fi
    if want scenes; then
        step "camera-loop scene tests under emulation"
        time in_root sh -c 'cd /src/edge && EDGE_HOME=/var/lib/edge /opt/edge/venv/bin/python -m pytest -v \
            -p no:cacheprovider tests/test_pipeline.py' || true
    fi
    if want lfw && [ -z "${LFW_PEOPLE:-}" ]; then
        step "the lfw-dev recognition test under emulation"
        time in_root sh -c 'cd /src/edge && EDGE_HOME=/var/lib/edge /opt/edge/venv/bin/python -m pytest -v \
            -p no:cacheprovider tests/test_recognition.py -k lfw' || true
    elif want lfw; then
        step "edge eval on the first $LFW_PEOPLE lfw-dev people: arm64 (emulated) and this host"
        rm -rf "$ROOT/var/tmp/lfw-part"; mkdir -p "$ROOT/var/tmp/lfw-part"
        ls "$SHARED/faces/lfw-dev" | sort | head -n "$LFW_PEOPLE" \
            | while read -r p; do cp -r "$SHARED/faces/lfw-dev/$p" "$ROOT/var/tmp/lfw-part/"; done
        echo "$(ls "$ROOT/var/tmp/lfw-part" | wc -l) people, $(find "$ROOT/var/tmp/lfw-part" -type f | wc -l) photos"
        time in_root env EDGE_HOME=/var/lib/edge /opt/edge/venv/bin/edge --json eval /var/tmp/lfw-part --no-cache \
            > "$WORK/aarch64-lfw-part.json" || true
        if [ -x "$SRC/.venv/bin/edge" ]; then
            EDGE_HOME="$WORK/host-home" EDGE_MODELS_DIR="${EDGE_MODELS_DIR:-$SRC/.edge-home/models}" \
                "$SRC/.venv/bin/edge" --json eval "$ROOT/var/tmp/lfw-part" --no-cache > "$WORK/host-lfw-part.json"
            python3 - "$WORK/aarch64-lfw-part.json" "$WORK/host-lfw-part.json" <<'EOF'
import json, sys
arm, x86 = (json.load(open(p)) for p in sys.argv[1:3])
print(f"{'':<20} {'aarch64':>14} {'x86-64':>14}")
for k in ("people", "probes", "no_face", "rank1", "impostor_pairs", "false_accepts", "far", "frr", "max_impostor_score"):
    a, x = arm.get(k), x86.get(k)
    a, x = (f"{v:.6g}" if isinstance(v, float) else str(v) for v in (a, x))
    print(f"{k:<20} {a:>14} {x:>14}")
# the same photo is at /var/tmp/lfw-part inside the root and under WORKDIR outside it
errors = [sorted(("/".join(photo.split("/")[-2:]), who) for photo, who in r.get("rank1_errors") or [])
          for r in (arm, x86)]
print(f"same rank-1 errors: {'yes' if errors[0] == errors[1] else 'NO'} ({len(errors[0])} on aarch64, "
      f"{len(errors[1])} on x86-64)")
EOF
        fi
    fi
else
    echo "no $SHARED/faces: tests skipped"
fi
step "done; log: $LOG"
