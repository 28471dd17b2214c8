from kiosk.camera.visits import Arrived, FaceReady, Left, VisitTracker


def feed(tracker, frames):
    """frames: list of (time, face or None, quality)."""
    out = []
    for now, face, quality in frames:
        out.extend(tracker.update(now, face, quality))
    return out


def test_a_steady_face_starts_one_visit_with_the_best_crop():
    tracker = VisitTracker(steady_frames=3, leave_after_s=1.0, cooldown_s=0.0)
    happenings = feed(tracker, [(0.0, "a", 1.0), (0.1, "b", 5.0), (0.2, "c", 2.0), (0.3, "d", 9.0)])
    assert [type(h) for h in happenings] == [Arrived, FaceReady]
    assert happenings[1].best == "b"  # best of the steady frames, not later ones
    assert happenings[0].session_id == happenings[1].session_id


def test_a_passer_by_gets_no_story():
    tracker = VisitTracker(steady_frames=3)
    assert feed(tracker, [(0.0, "a", 1.0), (0.1, "b", 1.0), (0.2, None, 0), (0.3, "c", 1.0)]) == []


def test_leaving_ends_the_visit_and_cooldown_blocks_a_new_one():
    tracker = VisitTracker(steady_frames=2, leave_after_s=1.0, cooldown_s=5.0)
    start = feed(tracker, [(0.0, "a", 1), (0.1, "a", 1)])
    session = start[0].session_id
    assert feed(tracker, [(0.5, None, 0), (0.9, "a", 1), (1.5, None, 0)]) == []  # brief look-away
    left = feed(tracker, [(2.0, None, 0), (2.5, None, 0)])
    assert left == [Left(session)]
    assert feed(tracker, [(3.0, "b", 1), (3.1, "b", 1), (3.2, "b", 1)]) == []  # cooling down
    again = feed(tracker, [(7.6, "c", 1), (7.7, "c", 1)])
    assert [type(h) for h in again] == [Arrived, FaceReady]
    assert again[0].session_id != session


def test_no_second_face_event_during_one_visit():
    tracker = VisitTracker(steady_frames=2, leave_after_s=10)
    happenings = feed(tracker, [(i * 0.1, "x", 1.0) for i in range(50)])
    assert sum(isinstance(h, FaceReady) for h in happenings) == 1
