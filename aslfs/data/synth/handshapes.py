"""Handshapes of the 59 vocabulary characters, built from real MediaPipe hand landmarks of the ASL letters.

Every shape is a right hand in *canonical units*: wrist at the origin, lengths in palm sizes (the mean length of the
four near-rigid palm segments, see ``scripts/build_letter_resource.py``), x to the image right, y down, z away from the
camera, seen through an ordinary (unmirrored) camera, palm towards the camera unless a character turns it.

A character is a :class:`CharSpec`: a set of real-derived shapes (one per source sample, so the within-letter variation
of the real data is kept), a base *twist* (forearm rotation about the hand's long axis, in degrees, applied by the
sequence builder so that turning the palm in or out is a smooth rotation) and a *motion* (see ``motion.py``).

Letters a-z are the real samples as recorded (J and Z are the snapshots of their handshape; the sequence builder adds
their movement). Digits follow the ASL number handshapes, derived from the real letters where ASL shares the shape:

====  =====================================================================================================
0     the O handshape (ASL 0 = O) with a small wrist twist, to tell it from the letter o
1     index up, the other fingers in a fist under the thumb: the S fist with the index finger of D; palm in
2     the V handshape, palm in
3     thumb, index and middle out: the V fingers with the extended thumb of L; palm sideways (twist 90°)
4     four fingers up and spread, thumb folded across the palm: B with the fingers fanned out; palm in
5     all five spread: B fanned out with the extended thumb of L; palm in
6     thumb touches the pinky (ASL 6 = W handshape), with the small twist
7     thumb touches the ring finger: F with the index extended (F's middle finger) and the ring finger curled
      (F's index finger), the thumb reaching the ring fingertip; with the small twist
8     thumb touches the middle finger: F with the index extended and the middle finger curled; with the twist
9     thumb touches the index (ASL 9 = F handshape), with the small twist
====  =====================================================================================================

The other characters have no standard ASL handshape; each gets a distinct (handshape, movement) pair, chosen to
evoke the glyph it draws (the movement names are the functions of ``motion.py``):

``.`` D + tap, ``,`` D + hook, ``:`` D + double tap, ``;`` X + double tap, ``-`` D + horizontal stroke,
``_`` B + horizontal stroke, ``/`` D + diagonal stroke, ``@`` D + circle, ``~`` D + shake, ``!`` D + vertical stroke,
``?`` X + vertical stroke, ``'`` X + tap, ``+`` X + horizontal stroke, ``=`` H + horizontal stroke (two parallel
lines), ``#`` V + vertical stroke, ``&`` A + circle, ``%`` O + diagonal stroke, ``$`` S + vertical stroke,
``(`` C + vertical stroke, ``)`` C + hook, ``[`` L + vertical stroke, ``*`` 5 + twist,
space: a pause with a relaxed open hand (halfway between B and C), lowered slightly.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from io import BytesIO

import numpy as np

#: Parent of each MediaPipe hand landmark (-1 for the wrist); children always come after their parent.
PARENTS = np.array([-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19])
THUMB, INDEX, MIDDLE, RING, PINKY = (1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20)
PALM = (0, 5, 9, 13, 17)


@dataclass(frozen=True)
class CharSpec:
    """How one character is signed.

    Attributes:
        char: the character.
        shapes: float32 (K, 21, 3) canonical right-hand shapes (real-derived samples).
        twist: base forearm rotation about the hand's long axis, degrees (180 = palm towards the signer).
        motion: name of the movement made while the character is held (``"hold"`` = none).
        note: one-line description (documentation and the letters sheet).
    """

    char: str
    shapes: np.ndarray
    twist: float
    motion: str
    note: str


@lru_cache(maxsize=1)
def letter_shapes() -> dict[str, np.ndarray]:
    """The packaged real letter shapes: letter -> float32 (K, 21, 3) canonical right-hand shapes."""
    raw = resources.files("aslfs").joinpath("resources/asl_letters.npz").read_bytes()
    with np.load(BytesIO(raw)) as data:
        shapes = data["shapes"].astype(np.float32)
        letters = str(data["letters"]) if data["letters"].ndim == 0 else "".join(data["letters"].tolist())
    if letters != string.ascii_lowercase or shapes.shape[1:] != (shapes.shape[1], 21, 3):
        raise ValueError("asl_letters.npz: unexpected content")
    return {c: shapes[i] for i, c in enumerate(letters)}


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotation R (3x3) minimising |R @ src_i - dst_i| over points already centred at the wrist."""
    h = src.T @ dst
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def transplant(base: np.ndarray, donor: np.ndarray, pairs: dict[tuple[int, ...], tuple[int, ...]]) -> np.ndarray:
    """Give ``base`` fingers whose joint directions come from ``donor`` (aligned on the palm), keeping base lengths.

    Args:
        base: (21, 3) shape that receives the fingers.
        donor: (21, 3) shape the bone directions come from.
        pairs: target finger -> donor finger (tuples of landmark ids, e.g. ``INDEX: MIDDLE``).
    Returns:
        (21, 3) new shape.
    """
    rot = _kabsch(donor[list(PALM)], base[list(PALM)])
    aligned = donor @ rot.T
    out = base.copy()
    for target, source in pairs.items():
        prev_t, prev_s = PARENTS[target[0]], PARENTS[source[0]]
        for t, s in zip(target, source):
            length = np.linalg.norm(base[t] - base[PARENTS[t]])
            vec = aligned[s] - aligned[prev_s]
            out[t] = out[prev_t] + vec / max(np.linalg.norm(vec), 1e-6) * length
            prev_t, prev_s = t, s
    return out


def reach(shape: np.ndarray, target: np.ndarray, weights=(0.25, 0.6, 1.0)) -> np.ndarray:
    """Move the thumb (landmarks 2, 3, 4) so that its tip reaches ``target``."""
    out = shape.copy()
    delta = target - shape[4]
    for joint, w in zip((2, 3, 4), weights):
        out[joint] = shape[joint] + w * delta
    return out


def spread(shape: np.ndarray, degrees: float) -> np.ndarray:
    """Fan the four fingers apart in the palm plane (index and pinky most, by ``degrees``)."""
    out = shape.copy()
    normal = np.cross(shape[5] - shape[0], shape[17] - shape[0])
    normal /= max(np.linalg.norm(normal), 1e-6)
    # index turns towards the thumb side, pinky away from it: signs from the palm's across direction
    for finger, k in ((INDEX, -1.0), (MIDDLE, -0.35), (RING, 0.35), (PINKY, 1.0)):
        ang = np.radians(degrees) * k
        rot = rotation_matrix(normal, ang)
        mcp = shape[finger[0]]
        for j in finger[1:]:
            out[j] = mcp + rot @ (shape[j] - mcp)
    return out


def rotation_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    """3x3 rotation by ``angle`` radians about the unit ``axis`` (right-hand rule)."""
    x, y, z = axis
    c, s = np.cos(angle), np.sin(angle)
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) * c + s * k + (1 - c) * np.outer(axis, axis)


def blend(a: np.ndarray, b: np.ndarray, alpha) -> np.ndarray:
    """Interpolate hand shapes bone by bone: bone directions and lengths are blended, so fingers bend, not shrink.

    Args:
        a, b: (..., 21, 3) shapes (broadcastable).
        alpha: weight of ``b``, scalar or (...) array.
    Returns:
        (..., 21, 3) shape with the wrist of ``a``/``b`` blended linearly.
    """
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    alpha = np.asarray(alpha, np.float32)[..., None]
    shape = np.broadcast_shapes(a.shape, b.shape, alpha.shape[:-1] + (1, 1))
    out = np.empty(shape, np.float32)
    out[..., 0, :] = (1 - alpha) * a[..., 0, :] + alpha * b[..., 0, :]
    for c in range(1, 21):
        p = PARENTS[c]
        va, vb = a[..., c, :] - a[..., p, :], b[..., c, :] - b[..., p, :]
        la = np.linalg.norm(va, axis=-1, keepdims=True)
        lb = np.linalg.norm(vb, axis=-1, keepdims=True)
        d = (1 - alpha) * va / np.maximum(la, 1e-6) + alpha * vb / np.maximum(lb, 1e-6)
        dn = np.linalg.norm(d, axis=-1, keepdims=True)
        lin = (1 - alpha) * va + alpha * vb  # fallback where the directions are opposite
        vec = np.where(dn > 0.2, d / np.maximum(dn, 1e-6) * ((1 - alpha) * la + alpha * lb), lin)
        out[..., c, :] = out[..., p, :] + vec
    return out


def _derive(base_letter: str, fn) -> np.ndarray:
    letters = letter_shapes()
    base = letters[base_letter]
    return np.stack([fn(k, base[k]) for k in range(len(base))]).astype(np.float32)


@lru_cache(maxsize=1)
def character_specs() -> dict[str, CharSpec]:
    """The :class:`CharSpec` of every vocabulary character (59, space included)."""
    from aslfs.vocab import CHAR_TO_ID

    L = letter_shapes()
    specs: dict[str, CharSpec] = {}

    def add(char, shapes, twist=0.0, motion="hold", note=""):
        specs[char] = CharSpec(char, np.ascontiguousarray(shapes, np.float32), float(twist), motion, note)

    for c in string.ascii_lowercase:
        motion = {"j": "j_hook", "z": "z_zigzag"}.get(c, "hold")
        add(c, L[c], motion=motion, note=f"ASL letter {c.upper()} (real samples)")

    one = _derive("s", lambda k, s: transplant(s, L["d"][k], {INDEX: INDEX}))
    three = _derive("v", lambda k, s: transplant(s, L["l"][k], {THUMB: THUMB}))
    four = _derive("b", lambda k, s: spread(s, 9.0))
    five = _derive("b", lambda k, s: transplant(spread(s, 11.0), L["l"][k], {THUMB: THUMB}))

    def seven(k, f):
        shp = transplant(f, f, {INDEX: MIDDLE, RING: INDEX})
        return reach(shp, shp[16])

    def eight(k, f):
        shp = transplant(f, f, {INDEX: MIDDLE, MIDDLE: INDEX})
        return reach(shp, shp[12])

    add("0", L["o"], motion="twist", note="ASL 0 = O handshape, small wrist twist")
    add("1", one, twist=160, note="index up over an S fist, palm in")
    add("2", L["v"], twist=160, note="V handshape, palm in")
    add("3", three, twist=80, note="thumb, index, middle out, palm sideways")
    add("4", four, twist=160, note="four fingers spread, thumb in, palm in")
    add("5", five, twist=160, note="all five spread, palm in")
    add("6", L["w"], motion="twist", note="thumb on pinky (W handshape), small twist")
    add("7", _derive("f", seven), motion="twist", note="thumb on ring finger, small twist")
    add("8", _derive("f", eight), motion="twist", note="thumb on middle finger, small twist")
    add("9", L["f"], motion="twist", note="thumb on index (F handshape), small twist")

    punct = {
        ".": ("d", "tap"), ",": ("d", "hook"), ":": ("d", "double_tap"), ";": ("x", "double_tap"),
        "-": ("d", "stroke_h"), "_": ("b", "stroke_h"), "/": ("d", "stroke_diag"), "@": ("d", "circle"),
        "~": ("d", "shake"), "!": ("d", "stroke_v"), "?": ("x", "stroke_v"), "'": ("x", "tap"),
        "+": ("x", "stroke_h"), "=": ("h", "stroke_h"), "#": ("v", "stroke_v"), "&": ("a", "circle"),
        "%": ("o", "stroke_diag"), "$": ("s", "stroke_v"), "(": ("c", "stroke_v"), ")": ("c", "hook"),
        "[": ("l", "stroke_v"),
    }
    for char, (letter, motion) in punct.items():
        add(char, L[letter], motion=motion, note=f"{letter.upper()} handshape + {motion.replace('_', ' ')}")
    add("*", five, motion="twist", note="5 handshape + twist")
    add(" ", blend(L["b"], L["c"], 0.5), motion="hold", note="pause: relaxed open hand, lowered")

    missing = set(CHAR_TO_ID) - set(specs)
    if missing:
        raise ValueError(f"no handshape defined for {sorted(missing)}")
    return specs


@lru_cache(maxsize=1)
def relaxed_shapes() -> np.ndarray:
    """(K, 21, 3) relaxed open hands (between B and C): the rest pose and the space pause."""
    return character_specs()[" "].shapes
