"""One synthetic sequence: a phrase fingerspelled by a :class:`~aslfs.data.synth.signer.Signer`.

:func:`synthesize` returns the (T, 1629) float32 frames in the competition's column order and the character held at
each frame ('' during transitions and at rest, ' ' during the pause of a space). The steps:

1. *Plan* (:func:`plan`): one hold per character (the signer's personal handshape, nudged towards a random real
   sample; 1–10 frames, 3–12 for characters with a movement), separated by transitions of 1–6 frames (``speed``
   divides both), each letter made at its own spot around the signing location (coarticulation), with a rest
   pose (hand lowered, relaxed) before and after. Doubled letters get a bounce (a dip during the transition) or a
   slide (the second hold sits half a palm further out); a space is a pause with a relaxed hand, lowered a little.
2. *Timeline*: every frame is either inside a hold (phase ``u``) or between two holds (eased blend ``alpha``).
   Handshapes are blended bone by bone (directions and lengths), positions and the forearm twist linearly, and the
   held character's movement (``motion.py``) is added.
3. *Hand*: the canonical shape is twisted about its long axis, turned by the signer's 3-D orientation (plus a
   wobble of about 12°), its depth scaled by the signer's depth scale, scaled to the signer's hand size and placed
   at the signing location in front of the chest, below the dominant shoulder, wandering about it.
4. *Body*: the real Holistic face and pose, scaled and placed for the signer, sway slowly; the head turns a little,
   the mouth opens and closes when the sequence is mouthed, the eyes blink; the dominant arm's elbow, wrist and hand
   points follow the hand.
5. *Detection*: a hand outside the image is not detected; the dominant hand is also lost in bursts (MediaPipe
   dropouts, likelier during fast transitions); the other hand is absent except, in a few sequences, a short
   glimpse of it resting low; small jitter on every landmark.
6. Left-handed signers: the whole frame is mirrored (x → 1 − x and every landmark swapped with its mirror partner,
   ``aslfs.landmarks.MIRROR_543``), so the dominant hand is a left hand in the ``left_hand`` columns, its arm the
   other pose side, and motions are mirrored as a left-hander makes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from aslfs.data.synth import motion as M
from aslfs.data.synth.handshapes import blend, character_specs, relaxed_shapes
from aslfs.data.synth.signer import ASPECT, CHIN, FOREHEAD, NOSE, Signer, face_weights, reference_frame
from aslfs.landmarks import ALL_LANDMARKS, MIRROR_543

N_FACE, N_HAND, N_POSE = 468, 21, 33
FACE0, LHAND0, POSE0, RHAND0 = 0, 468, 489, 522
N_ALL = 543
#: Pose landmarks of the person's right arm: shoulder, elbow, wrist, pinky, index, thumb.
R_SHOULDER, R_ELBOW, R_WRIST, R_PINKY, R_INDEX, R_THUMB = 12, 14, 16, 18, 20, 22
L_SHOULDER = 11
#: Where the rest pose, a space's pause and a doubled letter's slide put the wrist (palm sizes from the signing
#: location; -x is outwards, away from the body's midline, for a right hand in an unmirrored image).
REST_OFFSET = (-0.5, 2.4)
SPACE_OFFSET = (-0.3, 0.6)
SLIDE_OFFSET = -0.45
REST_TWIST = 50.0
#: The highest fraction of a sequence's frames lost in bursts (a few recordings keep only a handful of hand frames).
MAX_DROPOUT = 0.9


@lru_cache(maxsize=1)
def mirror_permutation() -> np.ndarray:
    """Landmark i of a mirrored frame takes the data of landmark ``perm[i]`` (with x flipped)."""
    pos = {n: i for i, n in enumerate(ALL_LANDMARKS)}
    return np.array([pos[MIRROR_543[n]] for n in ALL_LANDMARKS], dtype=np.int64)


#: Storage precision: coordinates are rounded to multiples of 2^-13 (about 0.06 px of a 512 px image, far below
#: MediaPipe's own jitter), and the 392 face-mesh landmarks the model never reads to 2^-10 (about half a pixel), so
#: that the parquet files compress (byte-stream-split + zstd) to about a quarter of their float32 size.
FINE_STEP, COARSE_STEP = 2.0**-13, 2.0**-10


@lru_cache(maxsize=1)
def storage_steps() -> np.ndarray:
    """(1629,) rounding step of every column (see ``FINE_STEP``, ``COARSE_STEP``)."""
    from aslfs.landmarks import ALL_COLUMNS, SELECTED_COLUMNS

    selected = set(SELECTED_COLUMNS)
    return np.array([COARSE_STEP if ("_face_" in c and c not in selected) else FINE_STEP for c in ALL_COLUMNS],
                    np.float32)


def quantize(frames: np.ndarray) -> np.ndarray:
    """Round (T, 1629) frames to their storage precision (NaN stays NaN)."""
    steps = storage_steps()
    return (np.round(frames / steps) * steps).astype(np.float32)


@dataclass
class Plan:
    """Holds and transitions of one sequence (K holds, K-1 transitions)."""

    labels: list  # K characters ('' for the rest poses)
    shapes: np.ndarray  # (K, 21, 3)
    twist: np.ndarray  # (K,) degrees
    motion: np.ndarray  # (K,) motion ids
    offset: np.ndarray  # (K, 2) palm sizes
    hold: np.ndarray  # (K,) frames
    trans: np.ndarray  # (K-1,) frames
    bounce: np.ndarray  # (K-1,) bool: dip during this transition


def plan(phrase: str, signer: Signer, rng: np.random.Generator, fast: bool = False, speed: float = 1.0) -> Plan:
    """Holds and transitions for ``phrase`` (see the module docstring); ``speed`` divides every duration."""
    specs = character_specs()
    relaxed = relaxed_shapes()
    slow = float(np.exp(rng.normal(0.0, 0.2))) / speed  # this recording's tempo (durations are multiplied by it)
    labels, shapes, twist, motion, offset, hold = [], [], [], [], [], []

    def rest(n):
        labels.append("")
        shapes.append(relaxed[rng.integers(len(relaxed))])
        twist.append(REST_TWIST)
        motion.append(M.MOTION_ID["hold"])
        offset.append(np.add(REST_OFFSET, rng.normal(0, 0.15, 2)))
        hold.append(n)

    rest(1 if fast else int(rng.integers(1, 11)))
    in_word = 0
    for i, c in enumerate(phrase):
        spec = specs[c]
        labels.append(c)
        shapes.append(signer.handshape(c, rng))
        twist.append(spec.twist + rng.normal(0, 6))
        motion.append(M.MOTION_ID[spec.motion])
        moving = spec.motion != "hold"
        if fast:
            n = 3 if moving else int(rng.integers(1, 3))
        elif c == " ":
            n = int(np.clip(round(rng.uniform(4, 10) * slow), 2, 12))
        else:
            base = signer.hold_mean * slow * np.exp(rng.normal(0.0, 0.3))
            n = int(np.clip(round(max(base * 1.5, 3) if moving else base), 3 if moving else 1, 12 if moving else 10))
        hold.append(n)
        off = rng.normal(0.0, signer.wander, 2)  # coarticulation: every letter is made somewhere else
        if c == " ":
            off += SPACE_OFFSET
            in_word = 0
        else:
            off[0] -= min(signer.drift * in_word, 1.0)
            in_word += 1
            if i > 0 and phrase[i - 1] == c and signer.doubled == "slide":
                off[0] = offset[-1][0] + SLIDE_OFFSET
        offset.append(off)
    rest(1 if fast else int(rng.integers(1, 10)))

    k = len(labels)
    trans = np.empty(k - 1, np.int64)
    bounce = np.zeros(k - 1, bool)
    for t in range(k - 1):
        if fast:
            trans[t] = 1
            continue
        if t == 0:
            trans[t] = rng.integers(3, 9)
        elif t == k - 2:
            trans[t] = rng.integers(3, 9)
        else:
            m = signer.transition_mean * slow * np.exp(rng.normal(0.0, 0.3))
            if " " in (labels[t], labels[t + 1]):
                m += 1
            trans[t] = int(np.clip(round(m), 1, 6))
            if labels[t] == labels[t + 1] and labels[t] != " " and signer.doubled == "bounce":
                bounce[t] = True
    return Plan(labels, np.stack(shapes).astype(np.float32), np.array(twist, np.float32), np.array(motion, np.int64),
                np.stack(offset).astype(np.float32), np.array(hold, np.int64), trans, bounce)


def timeline(p: Plan) -> dict[str, np.ndarray]:
    """Per-frame arrays of a plan: canonical shape (T, 21, 3), offset (T, 2), twist, roll (T,), label (T,) and
    ``moving`` (T,) (1 in transitions, for dropout weighting)."""
    k = len(p.hold)
    seg_len = np.empty(2 * k - 1, np.int64)
    seg_len[0::2], seg_len[1::2] = p.hold, p.trans
    seg_hold = np.zeros(2 * k - 1, bool)
    seg_hold[0::2] = True
    seg_k = np.arange(2 * k - 1) // 2
    t_total = int(seg_len.sum())
    frame_seg = np.repeat(np.arange(2 * k - 1), seg_len)
    start = np.concatenate([[0], np.cumsum(seg_len)[:-1]])
    j = np.arange(t_total) - start[frame_seg]
    n = seg_len[frame_seg].astype(np.float32)
    in_hold = seg_hold[frame_seg]
    kk = seg_k[frame_seg]
    a = kk
    b = np.where(in_hold, kk, np.minimum(kk + 1, k - 1))
    phase = np.where(in_hold, (j + 0.5) / n, (j + 1) / (n + 1)).astype(np.float32)
    alpha = np.where(in_hold, 0.0, M.smoothstep(phase)).astype(np.float32)
    u_a = np.where(in_hold, phase, 1.0).astype(np.float32)
    u_b = np.where(in_hold, phase, 0.0).astype(np.float32)
    mov = (1 - alpha)[:, None] * M.evaluate(p.motion[a], u_a) + alpha[:, None] * M.evaluate(p.motion[b], u_b)
    offset = (1 - alpha)[:, None] * p.offset[a] + alpha[:, None] * p.offset[b] + mov[:, :2]
    if k > 1:
        dipping = ~in_hold & p.bounce[np.minimum(kk, k - 2)]
        offset[:, 1] += np.where(dipping, 0.35 * np.sin(np.pi * phase), 0.0)
    labels = np.array(p.labels, dtype=object)
    return {
        "shape": blend(p.shapes[a], p.shapes[b], alpha),
        "offset": offset.astype(np.float32),
        "twist": ((1 - alpha) * p.twist[a] + alpha * p.twist[b] + mov[:, 2]).astype(np.float32),
        "roll": mov[:, 3].astype(np.float32),
        "label": np.where(in_hold, labels[kk], ""),
        "moving": (~in_hold).astype(np.float32),
    }


_BANK_SIZE = 1 << 22


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    return np.random.default_rng(20230501).standard_normal(_BANK_SIZE, dtype=np.float32)


def _noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Gaussian jitter, float32: a slice of a fixed bank of standard normals at a random offset (drawing fresh
    normals for every coordinate was a third of the generator's time; reusing the bank is invisible)."""
    n = int(np.prod(shape))
    if n > _BANK_SIZE // 2:
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)
    start = int(rng.integers(0, _BANK_SIZE - n))
    return _noise_bank()[start:start + n].reshape(shape) * np.float32(sigma)


def smooth_noise(rng: np.random.Generator, t: int, dims: int, amplitude: float, period=(25.0, 120.0)) -> np.ndarray:
    """A slow random wander (T, dims): a sum of three sinusoids per dimension with random periods and phases."""
    time = np.arange(t, dtype=np.float32)[:, None, None]
    freq = 1.0 / rng.uniform(*period, (1, dims, 3))
    ph = rng.uniform(0, 2 * np.pi, (1, dims, 3))
    amp = rng.uniform(0.5, 1.0, (1, dims, 3)) * amplitude / np.sqrt(3)
    return (amp * np.sin(2 * np.pi * freq * time + ph)).sum(-1).astype(np.float32)


def rotation_matrices(yaw, pitch, roll) -> np.ndarray:
    """(T, 3, 3) rotations R = Rz(roll) @ Rx(pitch) @ Ry(yaw), angles in degrees (arrays of shape (T,))."""
    y, p, r = (np.radians(np.asarray(v, np.float32)) for v in (yaw, pitch, roll))
    cy, sy, cp, sp, cr, sr = np.cos(y), np.sin(y), np.cos(p), np.sin(p), np.cos(r), np.sin(r)
    one, zero = np.ones_like(y), np.zeros_like(y)
    ry = np.stack([np.stack([cy, zero, sy], -1), np.stack([zero, one, zero], -1), np.stack([-sy, zero, cy], -1)], -2)
    rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, cp, -sp], -1), np.stack([zero, sp, cp], -1)], -2)
    rz = np.stack([np.stack([cr, -sr, zero], -1), np.stack([sr, cr, zero], -1), np.stack([zero, zero, one], -1)], -2)
    return rz @ rx @ ry


def twist_about_long_axis(shape: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """Rotate each frame's hand (T, 21, 3) about its wrist→middle-knuckle axis by ``degrees`` (T,)."""
    axis = shape[:, 9] / np.maximum(np.linalg.norm(shape[:, 9], axis=-1, keepdims=True), 1e-6)
    ang = np.radians(degrees)[:, None, None]
    k = axis[:, None, :]
    c, s = np.cos(ang), np.sin(ang)
    return shape * c + np.cross(k, shape) * s + k * (shape * k).sum(-1, keepdims=True) * (1 - c)


def outside_image(hand: np.ndarray) -> np.ndarray:
    """(T,) bool: the hand (T, 21, 3) in height units of an unmirrored frame is not detected because its middle
    knuckle (landmark 9) is outside the image (below its bottom edge, typically: at rest, or signing low)."""
    x, y = hand[:, 9, 0] / ASPECT, hand[:, 9, 1]
    return (x < 0) | (x > 1) | (y < 0) | (y > 1)


def dropout_mask(rng: np.random.Generator, t: int, rate: float, moving: np.ndarray) -> np.ndarray:
    """(T,) bool, True where the hand is lost: bursts (geometric lengths, mean about 6 frames, at most 40), starting
    3x likelier in transitions, until ``rate`` of the frames are lost."""
    lost = np.zeros(t, bool)
    target = int(round(rate * t))
    if target <= 0:
        return lost
    weights = 1.0 + 2.0 * moving
    weights = weights / weights.sum()
    count = 0
    for _ in range(10 * t):
        if count >= target:
            break
        start = int(rng.choice(t, p=weights))
        length = int(min(rng.geometric(0.16), 40, target - count))
        seg = lost[start:start + length]
        count += int((~seg).sum())
        lost[start:start + length] = True
    return lost


def _face(rng: np.random.Generator, t: int, face0: np.ndarray, origin: np.ndarray, face_h: float,
          mouthing: float) -> np.ndarray:
    """Face landmarks (T, 468, 3) in height units: the head turns a little, the mouth moves in some recordings, the
    eyes blink now and then; ``origin`` (T, 3) is the nose position of each frame."""
    head = smooth_noise(rng, t, 3, 3.0, (30.0, 140.0))
    r_head = rotation_matrices(head[:, 0], head[:, 1], head[:, 2])
    face = np.matmul(face0[None], r_head.transpose(0, 2, 1)) + origin[:, None]
    jaw_w, lid_w = face_weights()
    if rng.random() < mouthing:
        opening = np.clip(smooth_noise(rng, t, 1, 1.0, (6.0, 18.0))[:, 0], 0, None) * 0.05 * face_h
        face[:, :, 1] += jaw_w[None] * opening[:, None]
    blink = np.zeros(t, np.float32)
    for start in np.flatnonzero(rng.random(t) < 1 / 90):
        blink[start:start + 3] = (1.0, 0.9, 0.4)[: len(blink[start:start + 3])]
    face[:, :, 1] += lid_w[None] * blink[:, None] * 0.018 * face_h
    return face


def _other_hand(rng: np.random.Generator, t: int, fast: bool, shoulder: np.ndarray, size: float,
                sway: np.ndarray) -> np.ndarray:
    """The non-dominant hand (T, 21, 3): not detected, except in some recordings a short glimpse of it resting low
    below its ``shoulder``."""
    off = np.full((t, N_HAND, 3), np.nan, np.float32)
    if not fast and rng.random() < 0.2:
        n = int(rng.integers(4, 26))
        s0 = int(rng.integers(0, max(t - n, 1)))
        rest = relaxed_shapes()[rng.integers(len(relaxed_shapes()))]
        rest = rest * np.array([-1.0, 1.0, 1.0], np.float32)  # a left hand
        r_off = rotation_matrices(np.full(1, -40.0), np.full(1, 20.0), np.full(1, -15.0))[0]
        glimpse = (rest @ r_off.T) * size
        base = shoulder[:2] + np.array([0.1, 2.6], np.float32) * size
        seg = slice(s0, s0 + n)
        off[seg] = glimpse[None]
        off[seg, :, :2] += base + sway[seg, None] + smooth_noise(rng, n, 2, 0.1 * size, (10.0, 40.0))[:, None]
        off[seg] += _noise(rng, off[seg].shape, 0.012 * size)
        off[seg, 0, 2] = 0.0
    return off


def _follow_hand(pose: np.ndarray, hand: np.ndarray, pose0: np.ndarray, shoulder: np.ndarray, reach: np.ndarray,
                 sway: np.ndarray, scale: float) -> None:
    """Set the dominant arm's pose landmarks (wrist, hand points, elbow) from the hand, in place; ``reach`` (T, 2) is
    the wrist's offset from its anchor."""
    pose[:, R_WRIST, :2] = hand[:, 0, :2]
    pose[:, R_PINKY, :2] = 0.7 * hand[:, 17, :2] + 0.3 * hand[:, 18, :2]
    pose[:, R_INDEX, :2] = 0.7 * hand[:, 5, :2] + 0.3 * hand[:, 6, :2]
    pose[:, R_THUMB, :2] = 0.5 * hand[:, 2, :2] + 0.5 * hand[:, 3, :2]
    upper = float(np.linalg.norm((pose0[R_ELBOW] - pose0[R_SHOULDER])[:2]))
    pose[:, R_ELBOW, :2] = shoulder[:2] + np.array([-0.15, 0.85], np.float32) * upper + 0.35 * reach + sway
    z_sh = pose0[R_SHOULDER, 2]
    pose[:, R_ELBOW, 2] = z_sh - 0.4 * scale
    pose[:, [R_WRIST, R_PINKY, R_INDEX, R_THUMB], 2] = z_sh - np.array([0.9, 1.0, 1.05, 1.0], np.float32) * scale


def synthesize(phrase: str, signer: Signer, rng: np.random.Generator, hand_dropout: float,
               fast: bool = False, speed: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Fingerspell ``phrase``.

    Args:
        phrase: text within the vocabulary.
        signer: who signs it.
        rng: the sequence's random generator (the result depends only on it, the phrase and the signer).
        hand_dropout: detection-loss strength: the dataset-wide mean fraction of frames in which the dominant hand
            is lost in bursts (on top of the frames where it is outside the image).
        fast: a hurried, clipped recording (holds of 1–2 frames, no rest).
        speed: signing speed (every duration is divided by it).
    Returns:
        frames: float32 (T, 1629) in ``aslfs.landmarks.ALL_COLUMNS`` order, NaN where a hand is not detected.
        chars: (T,) object array, the character held at each frame ('' in transitions and at rest).
    """
    p = plan(phrase, signer, rng, fast, speed)
    tl = timeline(p)
    t = len(tl["label"])
    face_ref, pose_ref = reference_frame()
    iso = np.array([ASPECT, 1.0, ASPECT], np.float32)  # normalised -> height units (z is in x units)

    # --- body layout for this recording
    scale = signer.body_scale * float(np.exp(rng.normal(0, 0.03)))
    nose = np.array([signer.nose_xy[0] + rng.normal(0, 0.012), signer.nose_xy[1] + rng.normal(0, 0.012)], np.float32)
    nose_iso = np.array([nose[0] * ASPECT, nose[1], 0.0], np.float32)
    ref_nose = face_ref[NOSE] * iso
    face0 = (face_ref * iso - ref_nose) * scale
    face0[:, 0] *= signer.face_stretch[0]
    face0[:, 1] *= signer.face_stretch[1]
    pose0 = (pose_ref * iso - ref_nose * np.array([1, 1, 0], np.float32)) * scale
    pose0[11:, 0] *= signer.shoulder_stretch
    pose0[:, 2] = pose_ref[:, 2] * scale
    face_h = float(face0[CHIN, 1] - face0[FOREHEAD, 1])
    sway = smooth_noise(rng, t, 2, 0.006, (40.0, 160.0))
    sway3 = np.concatenate([sway, np.zeros((t, 1), np.float32)], 1)

    face = _face(rng, t, face0, nose_iso + sway3, face_h, signer.mouthing)

    # --- pose: body sways; the dominant (right) arm is set from the hand below
    pose = np.broadcast_to(pose0 + nose_iso, (t, N_POSE, 3)).copy()
    pose[:, :, :2] += sway[:, None]

    # --- dominant hand (right hand, unmirrored image)
    sh_r, sh_l = pose0[R_SHOULDER] + nose_iso, pose0[L_SHOULDER] + nose_iso
    anchor = sh_r[:2] + signer.anchor[0] * (sh_l[:2] - sh_r[:2]) - np.array([0.0, signer.anchor[1] * face_h])
    size = signer.hand_size * (scale / signer.body_scale)
    wob = smooth_noise(rng, t, 3, 12.0, (8.0, 40.0))
    yaw, pitch, roll = (v + rng.normal(0, 4) for v in signer.orientation)
    shape = twist_about_long_axis(tl["shape"], tl["twist"])
    rot = rotation_matrices(yaw + wob[:, 0], pitch + wob[:, 1], roll + wob[:, 2] + tl["roll"])
    hand = np.matmul(shape, rot.transpose(0, 2, 1)) * size
    wrist = anchor + tl["offset"] * size + sway + smooth_noise(rng, t, 2, signer.wander * size, (8.0, 40.0))
    hand[:, :, :2] += wrist[:, None]
    hand[:, :, 2] *= signer.depth_scale * float(np.exp(rng.normal(0, 0.1)))
    hand += _noise(rng, hand.shape, 0.02 * size * signer.jitter)
    hand[:, 0, 2] = rng.normal(0, 3e-7, t)  # MediaPipe puts the wrist at depth 0

    _follow_hand(pose, hand, pose0, sh_r, wrist - anchor, sway, scale)

    off = _other_hand(rng, t, fast, sh_l, size, sway)

    # --- detection noise and dropouts
    face += _noise(rng, face.shape, 0.0007 * signer.jitter)
    pose += _noise(rng, pose.shape, 0.0025 * signer.jitter)
    rate = min(hand_dropout * signer.dropout_factor * float(rng.gamma(1.5, 1 / 1.5)), MAX_DROPOUT)
    lost = dropout_mask(rng, t, rate, tl["moving"]) | outside_image(hand)
    hand[lost] = np.nan
    off[outside_image(off)] = np.nan

    return _frames(face, off, pose, hand, iso, signer.left_handed), tl["label"]


def _frames(face, off, pose, hand, iso, left_handed: bool) -> np.ndarray:
    """The competition's (T, 1629) columns from the parts in height units (mirrored for a left-handed signer)."""
    t = len(face)
    out = np.empty((t, N_ALL, 3), np.float32)
    out[:, FACE0:FACE0 + N_FACE] = face
    out[:, LHAND0:LHAND0 + N_HAND] = off
    out[:, POSE0:POSE0 + N_POSE] = pose
    out[:, RHAND0:RHAND0 + N_HAND] = hand
    out /= iso  # height units -> normalised (z back to x units)
    out[:, POSE0:POSE0 + N_POSE, 2] = pose[:, :, 2]  # pose z stays in pose units
    if left_handed:
        out = out[:, mirror_permutation()]
        out[..., 0] = 1.0 - out[..., 0]
    return quantize(out.transpose(0, 2, 1).reshape(t, 3 * N_ALL))
