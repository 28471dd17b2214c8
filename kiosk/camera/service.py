"""The camera service: frames in, ``presence`` and one ``face`` event per visit out.

Frames and crops stay in this process's memory; the only pixels that leave it are one small grey face
crop per visit, on the ``face`` topic that only the emotion service may read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import cv2
import numpy as np

from kiosk.camera import sources
from kiosk.camera.attributes import AttributeEstimator, make_attribute_estimator
from kiosk.camera.detector import Detection, encode_crop, face_crop, make_detector
from kiosk.camera.visits import Arrived, FaceReady, Left, VisitTracker, same_place
from kiosk.config import Settings
from kiosk.events import Attributes, BoundingBox, Command, Event, FaceEvent, PresenceEvent
from kiosk.service import Service

logger = logging.getLogger(__name__)

RECONNECT_DELAY_S = 2.0


class NoFaceFound(RuntimeError):
    """The source ended without a steady face."""


class CameraService(Service):
    name = "camera"
    commands = ("pause",)
    loop_beats = True

    def __init__(
        self,
        settings: Settings,
        once: bool = False,
        on_event: Callable[[Event], None] | None = None,
        client_id: str | None = None,
        stop_after_face: bool | None = None,
    ) -> None:
        super().__init__(settings, client_id)
        self.once = once
        self.stop_after_face = once if stop_after_face is None else stop_after_face
        self.on_event = on_event
        cfg = settings.camera
        self.tracker: VisitTracker[tuple[Detection, np.ndarray, np.ndarray]] = VisitTracker(
            cfg.steady_frames,
            cfg.leave_after_s,
            cfg.cooldown_s,
            same_face=lambda a, b: same_place(a[0], b[0]),  # a child running past does not lend the crop
        )
        self.detector = None
        self.attributes: AttributeEstimator | None = None
        self.spec: sources.SourceSpec | None = None
        self.frames_seen = 0
        self.fps = 0.0
        self.face_event_published = False
        self.paused_flag = settings.run_dir / "camera-paused"
        self.paused = self.paused_flag.exists()  # a pause outlives a restart

    def on_command(self, action: str, command: Command) -> None:
        """``pause`` ON: no detection and no new visits (a child present leaves as usual); OFF resumes."""
        if action != "pause":
            return
        if command.value not in ("ON", "OFF"):
            raise ValueError(f"pause expects ON or OFF, not {command.value!r}")
        self.paused = command.value == "ON"
        if self.paused:
            self.paused_flag.parent.mkdir(parents=True, exist_ok=True)
            self.paused_flag.touch()
        else:
            self.paused_flag.unlink(missing_ok=True)
        logger.info("kiosk %s by staff", "paused" if self.paused else "resumed")

    def setup(self) -> None:
        self.spec = sources.resolve(self.settings.camera.source)
        if self.spec.kind == "sample" and self.settings.camera.source is None:
            logger.warning("no camera and no SOURCE given: using the sample photo (%s)", self.spec.target)
        logger.info("camera source: %s", self.spec.describe())
        self.detector = make_detector(self.settings.camera.detector, self.settings.camera.min_face_px)
        cfg = self.settings.camera
        if cfg.attributes:
            self.attributes = make_attribute_estimator(
                cfg.age_gender_backend, cfg.glasses_backend, cfg.glasses_yolo_weights, self.settings.run_dir
            )

    def status_detail(self) -> dict[str, str | float | int | bool | None]:
        return {
            "source": self.spec.kind if self.spec else None,
            "fps": round(self.fps, 1),
            "detector": self.detector.name if self.detector else None,
            "attributes": self.attributes.name if self.attributes else None,
            "paused": self.paused,
        }

    def stage_metrics(self) -> dict[str, float]:
        return {"fps": round(self.fps, 1), "paused": float(self.paused)}

    def publish(self, event: Event) -> None:
        if self.on_event:
            self.on_event(event)
        super().publish(event)

    def loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                self._process(sources.frames(self.spec, self.settings.camera.fps, once=self.once))
            except sources.SourceError as exc:
                if self.once:
                    raise
                logger.error("camera source failed: %s; retrying in %.0f s", exc, RECONNECT_DELAY_S)
                self.bus.publish_status("online", **self.status_detail(), problem=str(exc))
                self.beat()  # the service is alive; the camera is not (reported in status)
                self.stop_event.wait(RECONNECT_DELAY_S)
                continue
            if self.once:
                if self.stop_after_face and not self.face_event_published:
                    raise NoFaceFound(f"no steady face found in {self.spec.describe()}")
                return
            if self.spec.kind in ("camera", "stream"):
                logger.warning("camera stream ended; reopening in %.0f s", RECONNECT_DELAY_S)
                self.stop_event.wait(RECONNECT_DELAY_S)

    def _clock(self):
        """Seconds for the visit tracker: the video's own time for files, the wall clock for live sources."""
        if self.spec.kind == "video":
            step = 1.0 / sources.video_fps(self.spec.target)
            return lambda: self.frames_seen * step
        return time.monotonic

    def _process(self, frames) -> None:
        every = self.settings.camera.detect_every
        window_start, window_frames = time.perf_counter(), 0
        last_faces: list[Detection] = []
        self.now = self._clock()
        for frame in frames:
            if self.stop_event.is_set():
                return
            self.beat()
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            if self.paused:
                last_faces = []
            elif self.frames_seen % every == 0:
                last_faces = self.detector.detect(grey)
            self.frames_seen += 1
            window_frames += 1
            if (elapsed := time.perf_counter() - window_start) >= 2.0:
                self.fps, window_start, window_frames = window_frames / elapsed, time.perf_counter(), 0
            self._track(frame, grey, last_faces[0] if last_faces else None)
            if self.stop_after_face and self.face_event_published:
                return

    def _track(self, frame: np.ndarray, grey: np.ndarray, face: Detection | None) -> None:
        candidate = (face, grey, frame) if face else None  # cropped only for the visit's best frame
        for happening in self.tracker.update(self.now(), candidate, face.quality if face else 0.0):
            if isinstance(happening, Arrived):
                self.publish(PresenceEvent(session_id=happening.session_id, state="arrived"))
            elif isinstance(happening, FaceReady):
                self.publish(self._face_event(happening.session_id, *happening.best))
                self.face_event_published = True
            elif isinstance(happening, Left):
                self.publish(PresenceEvent(session_id=happening.session_id, state="left"))

    def _face_event(self, session_id: str, face: Detection, grey: np.ndarray, frame: np.ndarray) -> FaceEvent:
        estimate = self.attributes.estimate(frame, face) if self.attributes else None
        if estimate:
            logger.info(
                "attributes %s (confidences %s) in %.1f ms",
                estimate.attributes.model_dump(exclude_none=True),
                estimate.confidences,
                estimate.latency_ms,
            )
        return FaceEvent(
            session_id=session_id,
            crop_jpeg_b64=encode_crop(face_crop(grey, face)),
            box=BoundingBox(x=face.x, y=face.y, w=face.w, h=face.h),
            frame_width=frame.shape[1],
            frame_height=frame.shape[0],
            quality=round(face.quality, 2),
            attributes=estimate.attributes if estimate else Attributes(),
        )
