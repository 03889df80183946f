"""track_objects: follows the detections of each session across frames and gives every object a
stable id, a pipeline node written in Python (built by componentize-py, scripts/build-plugins.sh).

Input: detections (a `yolo_decode` node's output), in frame pixels.
Config (all optional; any other key fails init with invalid-config):
  iou         minimum overlap (intersection over union, 0 < iou <= 1, default 0.3) for a
              detection to continue a track of the same label
  max_missed  client frames (dropped ones counted) a track outlives its last sighting before it
              ends (0-1000, default 5)
  min_score   detections scoring lower are ignored (0-1, default 0)
  labels      track only these labels (default: every label)
Output, per frame:
  {"tracks": [{"id", "label", "score", "box": [x1, y1, x2, y2], "first_frame", "frames_seen",
               "velocity": [vx, vy]}],
   "lost": [ids of tracks not seen in this frame but kept], "ended": [ids that ended now]}
"tracks" holds the objects seen in this frame, best score first; "velocity" is the box
centre's motion in pixels per client frame since the track's previous sighting ([0, 0] for a
new track), so dropped frames do not inflate it: that is what the frame context's index is for.

Matching is greedy by overlap: every (track, detection) pair of the same label with IoU >= iou,
highest first, each track and detection used once. Unmatched detections start new tracks
(ids from 1, per session).

State lives in the module-level `STATE`, not on `self`: componentize-py makes a new `Node` for
every call, while the module (like the whole component instance) lives for one WebSocket
session, and `init` runs once at its start.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import (
    Kind,
    NodeError_Failed,
    NodeError_InvalidConfig,
    NodeError_InvalidInput,
    Signature,
    Value_Detections,
    Value_Json,
)

# A frame with more detections than this is refused: matching is quadratic in the counts.
MAX_DETECTIONS = 1000


def iou(a, b):
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def centre(box):
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def read_config(text):
    """The config as (iou, max_missed, min_score, labels), or raises Err(invalid-config)."""

    def bad(message):
        return Err(NodeError_InvalidConfig(message))

    try:
        config = json.loads(text or "{}")
    except ValueError as e:
        raise bad(f"config is not JSON: {e}")
    if not isinstance(config, dict):
        raise bad("config must be a table")
    unknown = sorted(set(config) - {"iou", "max_missed", "min_score", "labels"})
    if unknown:
        raise bad(f"unknown config keys {unknown}; known: iou, max_missed, min_score, labels")
    threshold = config.get("iou", 0.3)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise bad(f"iou must be a number in (0, 1], got {threshold!r}")
    max_missed = config.get("max_missed", 5)
    if isinstance(max_missed, bool) or not isinstance(max_missed, int) or not 0 <= max_missed <= 1000:
        raise bad(f"max_missed must be an integer in 0..=1000, got {max_missed!r}")
    min_score = config.get("min_score", 0.0)
    if isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not 0 <= min_score <= 1:
        raise bad(f"min_score must be a number in [0, 1], got {min_score!r}")
    labels = config.get("labels")
    if labels is not None and (
        not isinstance(labels, list) or not labels or not all(isinstance(l, str) for l in labels)
    ):
        raise bad(f"labels must be a non-empty list of strings, got {labels!r}")
    return float(threshold), max_missed, float(min_score), None if labels is None else set(labels)


class Track:
    __slots__ = ("id", "label", "score", "box", "first_frame", "last_frame", "frames_seen", "velocity")

    def __init__(self, track_id, label, score, box, frame_index):
        self.id = track_id
        self.label = label
        self.score = score
        self.box = box
        self.first_frame = frame_index
        self.last_frame = frame_index
        self.frames_seen = 1
        self.velocity = (0.0, 0.0)

    def update(self, score, box, frame_index):
        frames = max(1, frame_index - self.last_frame)
        (ox, oy), (nx, ny) = centre(self.box), centre(box)
        self.velocity = ((nx - ox) / frames, (ny - oy) / frames)
        self.score = score
        self.box = box
        self.last_frame = frame_index
        self.frames_seen += 1

    def reply(self):
        return {
            "id": self.id,
            "label": self.label,
            "score": round(self.score, 4),
            "box": [round(v, 1) for v in self.box],
            "first_frame": self.first_frame,
            "frames_seen": self.frames_seen,
            "velocity": [round(v, 2) for v in self.velocity],
        }


class Tracker:
    """One session's settings and tracks."""

    def __init__(self, config):
        self.iou, self.max_missed, self.min_score, self.labels = read_config(config)
        self.tracks = []
        self.next_id = 1

    def process(self, frame, inputs):
        detections = [i.value.value for i in inputs if isinstance(i.value, Value_Detections)]
        if len(detections) != 1:
            raise Err(NodeError_InvalidInput(
                f"track_objects takes one detections input, got {len(detections)} among {len(inputs)} inputs"
            ))
        found = [
            (d.label, d.score, (d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2))
            for d in detections[0]
            if d.score >= self.min_score and (self.labels is None or d.label in self.labels)
        ]
        if len(found) > MAX_DETECTIONS:
            raise Err(NodeError_InvalidInput(
                f"{len(found)} detections in one frame; track_objects takes at most {MAX_DETECTIONS}"
            ))
        now = frame.frame_index

        pairs = []
        for t, track in enumerate(self.tracks):
            for d, (label, _, box) in enumerate(found):
                if label == track.label:
                    overlap = iou(track.box, box)
                    if overlap >= self.iou:
                        pairs.append((overlap, t, d))
        pairs.sort(key=lambda p: -p[0])
        used_tracks, used_found = set(), set()
        for _, t, d in pairs:
            if t in used_tracks or d in used_found:
                continue
            used_tracks.add(t)
            used_found.add(d)
            _, score, box = found[d]
            self.tracks[t].update(score, box, now)

        seen = [self.tracks[t] for t in sorted(used_tracks)]
        for d, (label, score, box) in enumerate(found):
            if d not in used_found:
                track = Track(self.next_id, label, score, box, now)
                self.next_id += 1
                self.tracks.append(track)
                seen.append(track)

        ended = [t.id for t in self.tracks if now - t.last_frame > self.max_missed]
        self.tracks = [t for t in self.tracks if now - t.last_frame <= self.max_missed]
        lost = [t.id for t in self.tracks if t.last_frame != now]
        seen.sort(key=lambda t: (-t.score, t.id))
        reply = {"tracks": [t.reply() for t in seen], "lost": lost, "ended": ended}
        return Value_Json(json.dumps(reply))


# The session's tracker, made by `init`.
STATE = None


class Node(exports.Node):
    def describe(self):
        return Signature(takes=[Kind.DETECTIONS], gives=[Kind.JSON])

    def init(self, config: str) -> None:
        global STATE
        STATE = None
        STATE = Tracker(config)

    def process(self, frame, inputs):
        if STATE is None:
            raise Err(NodeError_Failed("process called before init"))
        return STATE.process(frame, inputs)
