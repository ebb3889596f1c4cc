"""The device as the admin page sees it: the camera loop run in this process (``edge serve
--camera``), and a status summary (licence, models, camera, fps, disk, library size)."""
from __future__ import annotations

import logging
import shutil
import threading
import time

from .. import errors as E
from .. import outputs as O
from ..systemd import Notifier
from .envelope import ApiError

log = logging.getLogger("edge.serve")
RESTART_AFTER = 5.0     # seconds before a failed or ended camera loop is started again
# the same failure again (a missing camera, a config typo) is logged at most this often: every
# 5 s it was 17,280 identical lines a day in the journal
RELOG_AFTER = 60.0
# a loop iteration comes round at least every 0.5 s (the frame wait); one that has not for this
# long is stuck, and only a restart of the service frees it (edge run's LOOP_STALL_EXIT: 120 s)
HANG_AFTER = 20.0


class Device:
    def __init__(self, cfg, service, hub: O.Dispatcher | None, live):
        self.cfg, self.service, self.hub, self.live = cfg, service, hub, live
        self.started = time.time()
        self.runner = None
        self.camera_error: str | None = None
        self.camera_wanted = False
        self._source = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._models: tuple[float, list] | None = None
        self._looping = False
        self.hang_after = HANG_AFTER

    # ---- the camera loop ----------------------------------------------------------------------------
    def start_camera(self, source=None) -> None:
        """Run the configured camera loop (or ``source``: a URI or a ``sources.Source``) on its
        own thread, sharing this process's engine; restarted if it stops or fails."""
        self.camera_wanted, self._source = True, source
        self._thread = threading.Thread(target=self._camera_main, name="camera-loop", daemon=True)
        self._thread.start()

    def _camera_main(self):
        from ..runner import Runner, camera_source
        from ..sources import Source

        said, said_at = None, -RELOG_AFTER
        while not self._stop.is_set():
            try:
                eng = self.service.engine()
                src = self._source if isinstance(self._source, Source) else camera_source(self.cfg, self._source)
                disp = O.build(self.cfg)
                disp.add(self.hub, self.cfg.outputs.queue)
                self.runner = Runner(self.cfg, eng, src, disp, on_frame=self.live.observe,
                                     notifier=Notifier(env={}))
                self.camera_error = None
                self._looping = True
                try:
                    self.runner.run()
                finally:
                    self._looping = False
                if self._stop.is_set():
                    return
                self.camera_error = "the camera stream ended"
            except ApiError as e:
                self.camera_error = f"{e.code}: {e.detail}"
            except E.EdgeError as e:
                self.camera_error = f"{e.code}: {e.message}"
            except Exception as e:  # the page must stay up and say why the camera is not running
                log.exception("camera loop failed")
                self.camera_error = f"{type(e).__name__}: {e}"
            if self.camera_error != said or time.monotonic() - said_at >= RELOG_AFTER:
                log.warning("camera loop: %s; starting it again every %.0f s", self.camera_error, RESTART_AFTER)
                said, said_at = self.camera_error, time.monotonic()
            self._stop.wait(RESTART_AFTER)

    def healthy(self) -> bool:
        """For systemd's watchdog: False only while the camera loop is stuck inside an iteration.
        A loop that failed or ended is restarted here and its reason shown on the page; restarting
        the whole service would not help it and would take the page away."""
        r = self.runner
        return not (self._looping and r is not None and time.monotonic() - r.last_tick > self.hang_after)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self.runner is not None:
            self.runner.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    # ---- status -------------------------------------------------------------------------------------
    def licence(self) -> dict:
        from ..license import licensing

        try:
            lic = licensing(self.cfg)
        except E.EdgeError as e:
            return {"state": "error", "msg": e.message}
        if lic is None:
            return {"state": "off", "msg": "no vendor key installed: licensing is off"}
        st = lic.status()
        return {"state": "ok" if st.get("activated") else "error", **st}

    def models(self) -> list[dict]:
        from ..models import cards

        if self._models and time.monotonic() - self._models[0] < 300:
            return self._models[1]
        out = []
        for p in sorted(self.cfg.models_path.glob("*.json")):
            try:
                c = cards.read_card(p)
                cards.verify(c)
                out.append({"id": c["id"], "kind": c.get("kind", ""), "version": str(c.get("version", "")),
                            "state": "ok"})
            except E.EdgeError as e:
                out.append({"id": p.stem, "kind": "", "version": "", "state": e.message})
        self._models = (time.monotonic(), out)
        return out

    def camera(self) -> dict:
        if not self.camera_wanted:
            return {"state": "off", "msg": "not started (edge serve --camera)"}
        if self.camera_error or self.runner is None:
            return {"state": "error", "msg": self.camera_error or "starting"}
        st = self.runner.last_status
        return {"state": st.get("camera", "starting"), "fps": st.get("fps", 0.0), "frames": st.get("frames", 0),
                "decisions": st.get("decisions", 0), "unknown": st.get("unknown", 0), "drops": st.get("drops", 0),
                "reconnects": st.get("reconnects", 0), "mode": self.cfg.decision.mode}

    def status(self) -> dict:
        du = shutil.disk_usage(self.cfg.home if self.cfg.home.exists() else "/")
        try:
            lib = self.service.call(lambda l: l.count())
        except ApiError as e:
            lib = {"error": f"{e.code}: {e.detail}"}
        return {"licence": self.licence(), "models": self.models(), "camera": self.camera(), "library": lib,
                "disk": {"path": str(self.cfg.home), "free_mb": du.free // 2**20, "total_mb": du.total // 2**20,
                         "used_percent": round(100 * (du.total - du.free) / max(du.total, 1), 1)},
                "uptime_s": int(time.time() - self.started)}
