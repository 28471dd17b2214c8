"""Several children in front of the kiosk (issue #14): the closest steady face gets the visit, a second child
stepping in mid-visit does not take it over, and each child is counted once."""

from __future__ import annotations

import cv2
import numpy as np

from kiosk.camera import sources
from kiosk.camera.detector import Detection, YuNetDetector
from kiosk.camera.visits import Arrived, FaceReady, Left, VisitTracker, same_place

NEAR = Detection(300, 120, 200, 220, quality=9.0)  # the closest child: the largest face
FAR = Detection(40, 200, 60, 70, quality=1.0)


def tracker(steady_frames: int = 3) -> VisitTracker[Detection]:
    return VisitTracker(steady_frames=steady_frames, leave_after_s=1.0, cooldown_s=2.0, same_face=same_place)


def feed(visits: VisitTracker, frames) -> list:
    out = []
    for now, face in frames:
        out.extend(visits.update(now, face, face.quality if face else 0.0))
    return out


def test_the_detector_gives_the_closest_face_first():
    """The camera feeds the tracker the largest face: two children, the nearer one is first."""
    photo = sources.sample_photo()
    face = photo[40:220, 150:300]
    frame = np.full((480, 640, 3), 190, np.uint8)
    frame[300:396, 40:120] = cv2.resize(face, (80, 96))  # further back, smaller
    frame[60:390, 330:605] = cv2.resize(face, (275, 330))  # leaning in
    found = YuNetDetector().detect(frame)
    assert len(found) == 2, found
    assert found[0].x >= 300 and found[1].x < 100


def test_a_child_running_past_in_front_does_not_lend_the_crop():
    """FAR stands still; NEAR runs past for two frames: FAR's wait restarts and the crop is FAR's own."""
    visits = tracker(steady_frames=3)
    frames = [(0.0, FAR), (0.1, FAR), (0.2, NEAR), (0.3, NEAR), (0.4, FAR), (0.5, FAR), (0.6, FAR)]
    happenings = feed(visits, frames)
    assert [type(h) for h in happenings] == [Arrived, FaceReady]
    assert happenings[1].best == FAR


def test_the_closest_steady_face_gets_the_visit():
    visits = tracker(steady_frames=3)
    happenings = feed(visits, [(0.0, NEAR), (0.1, NEAR), (0.2, NEAR)])
    assert happenings[1].best == NEAR


def test_a_second_child_stepping_in_mid_visit_does_not_take_over():
    visits = tracker(steady_frames=2)
    start = feed(visits, [(0.0, FAR), (0.1, FAR)])
    session = start[0].session_id
    later = feed(visits, [(0.2 + i * 0.1, NEAR) for i in range(30)])  # a closer child, for 3 s
    assert later == []  # no new visit, no second face event: the first child's story goes on
    assert visits.session_id == session


def test_each_child_is_counted_once():
    """A look-away shorter than leave_after_s is the same visit; a new visit only after the room was empty."""
    visits = tracker(steady_frames=2)
    frames = [(0.0, NEAR), (0.1, NEAR), (0.5, None), (0.9, NEAR), (1.2, None), (1.5, NEAR)]
    frames += [(1.6 + i * 0.1, None) for i in range(12)]  # gone: left after 1 s
    frames += [(5.0, NEAR), (5.1, NEAR)]  # back after the cooldown: a new visit
    happenings = feed(visits, frames)
    kinds = [type(h) for h in happenings]
    assert kinds == [Arrived, FaceReady, Left, Arrived, FaceReady]
    assert happenings[0].session_id == happenings[2].session_id != happenings[3].session_id


def test_same_place_tells_two_children_apart_and_follows_one_that_moves():
    moved = Detection(NEAR.x + 30, NEAR.y + 10, NEAR.w, NEAR.h, quality=9.0)
    assert same_place(NEAR, moved) and not same_place(NEAR, FAR)
