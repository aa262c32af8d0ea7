"""Movements made while a character is held.

A movement is a function of the hold's phase ``u`` in [0, 1] (array) returning ``(dx, dy, twist, roll)``: the wrist's
displacement in palm sizes in the image plane (x right, y down, as drawn by a right hand: left-handed signers are
mirrored as a whole), an extra forearm twist about the hand's long axis and an in-plane roll, both in degrees.
Directions are as the signer sees them ("left to right" for the signer is image right to left, the camera is not
mirrored). Strokes start and end still (smoothstep), so a hold is a movement between two short stills.
"""

from __future__ import annotations

import numpy as np


def smoothstep(u, lo: float = 0.0, hi: float = 1.0):
    """0 before ``lo``, 1 after ``hi``, a C1 ramp in between."""
    t = np.clip((np.asarray(u, np.float32) - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _zero(u):
    z = np.zeros_like(np.asarray(u, np.float32))
    return z, z, z, z


def hold(u):
    return _zero(u)


def tap(u):
    """A short downward tap and back (a dot)."""
    z = _zero(u)[0]
    return z, 0.35 * np.sin(np.pi * np.clip(u, 0, 1)) ** 2, z, z


def double_tap(u):
    """Two taps, the second lower (two dots one above the other)."""
    z = _zero(u)[0]
    dy = 0.28 * np.sin(2 * np.pi * np.clip(u, 0, 1)) ** 2 + 0.45 * smoothstep(u, 0.4, 0.6) - 0.22
    return z, dy, z, z


def hook(u):
    """Down, then curving towards the signer's right (a comma)."""
    s = smoothstep(u, 0.1, 0.9)
    a = 0.5 * np.pi * s
    z = _zero(u)[0]
    return -0.35 * (1 - np.cos(a)) + 0.17, 0.45 * np.sin(a) - 0.22, z, z


def stroke_h(u):
    """A horizontal line, left to right as the signer sees it."""
    z = _zero(u)[0]
    return 0.45 - 0.9 * smoothstep(u, 0.15, 0.85), z, z, z


def stroke_v(u):
    """A vertical line, top to bottom."""
    z = _zero(u)[0]
    return z, -0.45 + 0.9 * smoothstep(u, 0.15, 0.85), z, z


def stroke_diag(u):
    """A slash, bottom-left to top-right as the signer sees it."""
    s = smoothstep(u, 0.15, 0.85)
    z = _zero(u)[0]
    return 0.4 - 0.8 * s, 0.4 - 0.8 * s, z, z


def circle(u):
    """A small circle."""
    a = 2 * np.pi * smoothstep(u, 0.05, 0.95)
    z = _zero(u)[0]
    return 0.3 * np.sin(a), 0.3 * (1 - np.cos(a)) - 0.3, z, z


def shake(u):
    """Side to side twice (a wave)."""
    z = _zero(u)[0]
    return 0.25 * np.sin(4 * np.pi * np.clip(u, 0, 1)), z, z, z


def twist(u):
    """The forearm turns out and back (about 35°)."""
    z = _zero(u)[0]
    return z, z, 35.0 * np.sin(2 * np.pi * np.clip(u, 0, 1)), z


def j_hook(u):
    """J: the pinky draws a J — down, then curving towards the thumb side while the palm turns to the signer."""
    s = smoothstep(u, 0.05, 0.95)
    a = 0.5 * np.pi * s
    return 0.45 * (1 - np.cos(a)) - 0.2, 0.55 * np.sin(a) - 0.3, 80.0 * s, -20.0 * s


_Z_POINTS = np.array([[-0.35, -0.3], [0.35, -0.3], [-0.35, 0.3], [0.35, 0.3]], np.float32)


def z_zigzag(u):
    """Z: the index draws a Z as the signer sees it — across, diagonally back and down, across again."""
    s = np.clip(np.asarray(u, np.float32), 0, 1) * 3.0
    seg = np.minimum(s.astype(np.int32), 2)
    frac = smoothstep(s - seg, 0.0, 1.0)
    p = _Z_POINTS[seg] + (_Z_POINTS[seg + 1] - _Z_POINTS[seg]) * frac[..., None]
    z = _zero(u)[0]
    return -p[..., 0], p[..., 1], z, z


MOTIONS = {
    f.__name__: f
    for f in (hold, tap, double_tap, hook, stroke_h, stroke_v, stroke_diag, circle, shake, twist, j_hook, z_zigzag)
}
MOTION_NAMES = tuple(MOTIONS)
MOTION_ID = {name: i for i, name in enumerate(MOTION_NAMES)}


def evaluate(motion_ids: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Movement of every frame: (T,) motion ids and phases → float32 (T, 4) = dx, dy, twist, roll."""
    out = np.zeros((len(u), 4), np.float32)
    for mid in np.unique(motion_ids):
        sel = motion_ids == mid
        if mid == MOTION_ID["hold"]:
            continue
        out[sel] = np.stack(MOTIONS[MOTION_NAMES[mid]](u[sel]), axis=-1)
    return out
