"""Training augmentations of the reference (docs/reference.md §3) as pure NumPy functions, plus the probability structure
that combines them.

Data: a globally normalised sequence, float32 (T, 130, 3), last axis x, y, z, 0 = missing (the output of
:func:`aslfs.data.normalize.normalize_np`). Landmark sets come from :mod:`aslfs.landmarks`.

Two layers:

1. **Augmentation functions** ``f(x, rng, **params) -> x``. ``rng`` is a :class:`numpy.random.Generator` (the only
   source of randomness; nothing global is touched). They never modify their input; the result may be the input
   object itself (nothing changed) or share memory with it (a time slice), so callers must not modify it in place. Each random function draws its parameters and calls a deterministic kernel
   (``nearest_indices``, ``shift_time``, ``affine_xy``, ``drop_landmarks``, ``mask_frames``...) that tests can drive
   with chosen parameters.
2. **Structure**: :class:`Apply`, :class:`OneOf`, :class:`OnWindows`, :class:`Compose` reproduce the probability
   semantics of the reference's albumentations 1.3.1 wrappers, and :func:`build_augmentation` builds the cfg_1 / cfg_2
   lists (§3.11) as data from :class:`aslfs.config.AugmentParams`.

   - ``Apply(fn, p)``: runs ``fn`` when forced or with probability ``p``.
   - ``OneOf(children, p)``: with probability ``p`` picks one child with probability proportional to the children's
     ``p`` and calls it *forced*. **QUIRK** (§3.8): the reference's ``OneOf`` ignores the force flag it receives, so a
     ``OneOf`` nested in another still applies its own ``p`` (``one_of_force_fixed`` honours it).
   - ``OnWindows(inner, p)``: two windows (``randint(2, 3)``), each of ``⌊T·U(0.25, 0.5)⌋`` frames, the inner transform
     drawn afresh and forced on each. **QUIRK** (§3.7): the probability is tested twice, effective ``p² = 0.5625``
     (``on_windows_single_check`` tests it once, 0.75).

Every structure node accepts ``trace``: a list to which each transform that fires appends its name (used by the
probability tests and for debugging).

Faithful by default; each documented reference QUIRK has a switch in ``AugmentParams`` (all False by default):

- ``spatial_mask_fixed`` (§3.10): SpatialMask zero-fills the landmarks in a box of 5–10 % of the x/y extent
  (the reference's unused ``SpatialMaskFix``, relative mode) instead of returning its input.
- ``fingers_drop_fixed`` (§3.7): drop 2–5 distinct fingers (``randint(2, 6)``) instead of the union of 12 draws with
  replacement (4–10 distinct fingers, mean ≈ 7.2).
- ``on_windows_single_check`` (§3.7): OnWindows fires with p 0.75 instead of 0.5625.
- ``temporal_mask_inclusive_counts`` (§3.9): TemporalMask counts 1–2, 2–3 and 4–5 inclusive instead of exactly
  1, 2 and 4.
- ``one_of_force_fixed`` (§3.8, §10): a forced ``OneOf`` always applies its chosen child, so the inner body-part
  ``OneOf`` no longer applies its own p = 0.5 (PoseDrop2 0.530 / FaceDrop 0.379 / HandDrop2 0.091 / none 0).
- ``affine_keep_missing`` (not a flagged quirk, a deliberate option): SpatialAffine leaves landmarks whose x and y
  are both exactly 0 (missing, zero-filled, TimeShift frames) at 0. The reference transforms them like any point,
  so after its affine a missing landmark sits at a non-zero constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from aslfs import landmarks as lm

Array = np.ndarray
Fn = Callable[..., Array]

#: The 4 PoseDrop2 subsets (§3.8): the 12 pose positions taken as consecutive pairs, subset k drops pairs k..5.
POSE_DROP_SUBSETS: tuple[Array, ...] = tuple(lm.POSE.reshape(-1, 2)[k:].ravel() for k in range(4))


# ----------------------------------------------------------------------------------------------------------------------
# Deterministic kernels
# ----------------------------------------------------------------------------------------------------------------------


def nearest_indices(length: int, new_length: int) -> Array:
    """Source frame of each output frame for nearest resampling of ``length`` frames to ``new_length``.

    ``src[i] = ⌊i · length / new_length⌋``, in exact integer arithmetic. This is PyTorch's ``F.interpolate`` default
    ``mode="nearest"`` (``⌊i · s⌋`` with ``s = length / new_length``); PyTorch evaluates ``s`` in float32, which can
    differ by one frame exactly at integer boundaries; the exact form is used here.
    """
    return (np.arange(new_length, dtype=np.int64) * length) // new_length


def shift_time(x: Array, shift: int) -> Array:
    """TimeShift kernel (§3.5): ``shift > 0`` prepends that many all-zero frames; ``-T + 2 < shift ≤ 0`` drops the
    first ``|shift|`` frames; otherwise the sequence is returned unchanged."""
    if shift > 0:
        return np.concatenate([np.zeros((shift,) + x.shape[1:], x.dtype), x])
    if shift > -len(x) + 2:
        return x[-shift:]
    return x


def affine_xy(x: Array, scale: float, shear_x: float, shear_y: float, shift: float, degree: float,
              keep_missing: bool = False) -> Array:
    """SpatialAffine kernel (§3.6) on x and y; z is untouched.

    In order: multiply by ``scale``; shear ``[x, y] @ [[1, shear_x], [shear_y, 1]]`` (``x' = x + shear_y·y``,
    ``y' = shear_x·x + y``); rotate by ``degree`` about the centre ``(shear_y, shear_x)`` (**QUIRK**: the centre is
    ``(0, 0)`` plus the shear values) with ``[x, y] @ [[cos, sin], [−sin, cos]]``; add the same ``shift`` to x and y.
    The four steps are folded into one 2×2 matrix and offset: ``[x, y] @ M + b`` with
    ``M = scale · Sh · R`` and ``b = c − c·R + shift``.

    Args:
        keep_missing: leave landmarks with x = y = 0 at 0 (option, not reference behaviour).
    """
    theta = degree / 180 * math.pi
    cos, sin = math.cos(theta), math.sin(theta)
    rot = np.array([[cos, sin], [-sin, cos]])
    mat = scale * np.array([[1.0, shear_x], [shear_y, 1.0]]) @ rot
    centre = np.array([shear_y, shear_x])
    off = centre - centre @ rot + shift
    x0, y0 = x[..., 0], x[..., 1]
    out = np.empty_like(x)
    out[..., 0] = x0 * np.float32(mat[0, 0]) + y0 * np.float32(mat[1, 0]) + np.float32(off[0])
    out[..., 1] = x0 * np.float32(mat[0, 1]) + y0 * np.float32(mat[1, 1]) + np.float32(off[1])
    out[..., 2] = x[..., 2]
    if keep_missing:
        missing = (x0 == 0) & (y0 == 0)
        out[..., :2][missing] = 0
    return out


def drop_landmarks(x: Array, idx: Array) -> Array:
    """Zero-fill (x, y, z) of landmarks ``idx`` in every frame."""
    out = x.copy()
    out[:, idx] = 0
    return out


def window_bounds(length: int, fractions: Array, offsets01: Array) -> list[tuple[int, int]]:
    """Time windows as the reference draws them (§3.7, §3.9): size ``⌊T·f⌋``, offset ``⌊u · clip(T − size, 1, T)⌋``.

    Returns ``[(start, stop)]``; windows may overlap, run past the end (then they are cut by slicing) or be empty.
    """
    out = []
    for f, u in zip(fractions, offsets01):
        size = int(length * f)
        room = min(max(length - size, 1), length)
        start = int(u * room)
        out.append((start, start + size))
    return out


def mask_frames(x: Array, windows: Sequence[tuple[int, int]]) -> Array:
    """Zero-fill every landmark of the frames inside ``windows``."""
    out = x.copy()
    for start, stop in windows:
        out[start:stop] = 0
    return out


# ----------------------------------------------------------------------------------------------------------------------
# Augmentation functions f(x, rng, **params) -> x
# ----------------------------------------------------------------------------------------------------------------------


def flip(x: Array, rng: np.random.Generator | None = None) -> Array:
    """Flip (§3.1): negate x, then landmark ``i`` takes the data of ``FLIP_INDEX[i]`` (its mirror partner). z unchanged.

    Deterministic (``rng`` is accepted for a uniform signature). Flipping twice is the identity.
    """
    out = x[:, lm.FLIP_INDEX]
    out[..., 0] *= -1
    return out


def resample(x: Array, rng: np.random.Generator, rate: tuple[float, float] = (0.5, 1.5)) -> Array:
    """Resample (§3.3): r ~ U(rate); new length ``max(⌊T·r⌋, 1)``, nearest neighbour (:func:`nearest_indices`)."""
    r = rng.uniform(rate[0], rate[1])
    new = max(int(len(x) * r), 1)
    return x[nearest_indices(len(x), new)]


def dynamic_resample(x: Array, rng: np.random.Generator, rate: tuple[float, float] = (0.9, 1.1),
                     windows: tuple[int, int] = (20, 30)) -> Array:
    """DynamicResample (§3.4): local time warping.

    ``n = randint(*windows)`` (upper bound exclusive) rates r_i ~ U(rate), truncated to T; the sequence is split as
    ``torch.chunk(n)`` does (consecutive chunks of ``⌈T/n⌉`` frames, the last shorter, possibly fewer than n), and
    chunk i is nearest-resampled to ``max(⌊len_i·r_i⌋, 1)`` frames.
    """
    length = len(x)
    n = int(rng.integers(windows[0], windows[1]))
    rates = rng.uniform(rate[0], rate[1], size=n)[:length]
    size = -(-length // len(rates))
    starts = np.arange(0, length, size)
    lens = np.minimum(size, length - starts)
    new = np.maximum((lens * rates[: len(starts)]).astype(np.int64), 1)
    chunk = np.repeat(np.arange(len(starts)), new)
    local = np.arange(new.sum()) - np.repeat(np.cumsum(new) - new, new)
    idx = starts[chunk] + (local * lens[chunk]) // new[chunk]
    return x[idx]


def time_shift(x: Array, rng: np.random.Generator, shift: tuple[int, int] = (-10, 10)) -> Array:
    """TimeShift (§3.5): s = randint(*shift) (upper bound exclusive), then :func:`shift_time`."""
    return shift_time(x, int(rng.integers(shift[0], shift[1])))


def spatial_affine(x: Array, rng: np.random.Generator, scale: tuple[float, float] = (0.7, 1.3),
                   shear: tuple[float, float] = (-0.2, 0.2), shift: tuple[float, float] = (-0.15, 0.15),
                   degree: tuple[float, float] = (-30.0, 30.0), keep_missing: bool = False) -> Array:
    """SpatialAffine (§3.6): draws scale, one shear value h (with p ½ only ``shear_y = h``, else only ``shear_x = h``),
    one shift for both x and y and a rotation angle, then :func:`affine_xy`. z is untouched."""
    s = rng.uniform(scale[0], scale[1])
    h = rng.uniform(shear[0], shear[1])
    shear_x, shear_y = (0.0, h) if rng.random() < 0.5 else (h, 0.0)
    t = rng.uniform(shift[0], shift[1])
    d = rng.uniform(degree[0], degree[1])
    return affine_xy(x, s, shear_x, shear_y, t, d, keep_missing=keep_missing)


def draw_fingers(rng: np.random.Generator, n_fingers: tuple[int, int] = (2, 6), fixed: bool = False) -> Array:
    """Finger numbers (rows of ``FINGERS``) that one FingersDrop call zero-fills (§3.7).

    Faithful (**QUIRK**): ``randint(10, size=n_fingers)`` draws a 2×6 array, 12 fingers with replacement (4–10
    distinct, mean ≈ 7.2). ``fixed``: ``randint(*n_fingers)`` = 2–5 distinct fingers.
    """
    n_all = len(lm.FINGERS)
    if fixed:
        return rng.choice(n_all, size=int(rng.integers(n_fingers[0], n_fingers[1])), replace=False)
    return np.unique(rng.integers(n_all, size=n_fingers[0] * n_fingers[1]))


def fingers_drop(x: Array, rng: np.random.Generator, n_fingers: tuple[int, int] = (2, 6), fixed: bool = False) -> Array:
    """FingersDrop (§3.7): zero-fill (xyz) the landmarks of :func:`draw_fingers` in every frame of ``x``."""
    return drop_landmarks(x, lm.FINGERS[draw_fingers(rng, n_fingers, fixed)].ravel())


def on_windows(x: Array, rng: np.random.Generator, fn: Callable[[Array, np.random.Generator], Array],
               window_size: tuple[float, float] = (0.25, 0.5), num_windows: tuple[int, int] = (2, 3)) -> Array:
    """Apply ``fn`` (drawn afresh) to ``randint(*num_windows)`` time windows of ``⌊T·U(window_size)⌋`` frames
    (:func:`window_bounds`), one after another, so overlapping windows compose (§3.7)."""
    k = int(rng.integers(num_windows[0], num_windows[1]))
    fractions = rng.uniform(window_size[0], window_size[1], size=k)
    offsets = rng.random(k)
    out = x.copy()
    for start, stop in window_bounds(len(x), fractions, offsets):
        out[start:stop] = fn(out[start:stop], rng)
    return out


def pose_drop2(x: Array, rng: np.random.Generator) -> Array:
    """PoseDrop2 (§3.8): zero-fill one of :data:`POSE_DROP_SUBSETS`, chosen uniformly, for the whole sequence."""
    return drop_landmarks(x, POSE_DROP_SUBSETS[int(rng.integers(len(POSE_DROP_SUBSETS)))])


def face_drop(x: Array, rng: np.random.Generator | None = None) -> Array:
    """FaceDrop (§3.8): zero-fill the 76 face landmarks for the whole sequence."""
    return drop_landmarks(x, lm.FACE)


def hand_drop2(x: Array, rng: np.random.Generator | None = None) -> Array:
    """HandDrop2 (§3.8): zero-fill the 42 hand landmarks for the whole sequence."""
    return drop_landmarks(x, lm.HANDS)


def temporal_mask(x: Array, rng: np.random.Generator, size: tuple[float, float] = (0.2, 0.4),
                  num_masks: tuple[int, int] = (1, 2), inclusive: bool = False) -> Array:
    """TemporalMask (§3.9): zero-fill k windows of ``⌊T·U(size)⌋`` frames across all landmarks.

    Faithful (**QUIRK**): ``k = randint(*num_masks)`` with the upper bound exclusive, so (1, 2) is exactly 1.
    ``inclusive``: ``k ∈ [num_masks[0], num_masks[1]]``.
    """
    k = int(rng.integers(num_masks[0], num_masks[1] + (1 if inclusive else 0)))
    fractions = rng.uniform(size[0], size[1], size=k)
    offsets = rng.random(k)
    return mask_frames(x, window_bounds(len(x), fractions, offsets))


def spatial_mask(x: Array, rng: np.random.Generator, size: tuple[float, float] = (0.05, 0.1),
                 fixed: bool = False) -> Array:
    """SpatialMask (§3.10).

    Faithful (**QUIRK**): a no-op, returns ``x`` itself. ``fixed`` (the reference's ``SpatialMaskFix``, relative mode):
    with ``e_x = max x − min x`` and ``e_y`` likewise over the whole sequence, s ~ U(size) and offsets u, v ~ U(0, 1),
    zero-fill (xyz) every (frame, landmark) with ``min x + u·e_x < x < min x + u·e_x + s·e_x`` and the same for y.
    """
    if not fixed:
        return x
    u, v, s = rng.random(), rng.random(), rng.uniform(size[0], size[1])
    x0, y0 = x[..., 0], x[..., 1]
    x_min, x_max, y_min, y_max = x0.min(), x0.max(), y0.min(), y0.max()
    ox, oy = u * (x_max - x_min) + x_min, v * (y_max - y_min) + y_min
    box = (ox < x0) & (x0 < ox + s * (x_max - x_min)) & (oy < y0) & (y0 < oy + s * (y_max - y_min))
    out = x.copy()
    out[box] = 0
    return out


def outer_cutmix(x: Array, phrase: str, score: float | None, x2: Array, phrase2: str, score2: float | None,
                 rng: np.random.Generator) -> tuple[Array, str, float | None]:
    """Outer CutMix (§3.2) of the anchor ``(x, phrase, score)`` with a partner (same participant, not flipped).

    One cut fraction c ~ U(0, 1) for both; cut positions ``clip(round(n·c), 1, n − 1)`` for both phrases and both
    frame counts (NumPy clip semantics: for n = 1 the cut is 0). With p ½ the result is partner tail + anchor head
    (frames and characters), score ``c·score + (1 − c)·score2``; otherwise anchor tail + partner head, score
    ``c·score2 + (1 − c)·score``. The score is ``None`` when either input score is ``None`` (round 1).
    """
    c = rng.random()

    def cut(n: int) -> int:
        return min(max(round(n * c), 1), n - 1)

    cp, cp2, cx, cx2 = cut(len(phrase)), cut(len(phrase2)), cut(len(x)), cut(len(x2))
    partner_first = rng.random() < 0.5
    if partner_first:
        new_x = np.concatenate([x2[cx2:], x[:cx]])
        new_phrase = phrase2[cp2:] + phrase[:cp]
        weight = c  # fraction of the output that comes from the anchor
    else:
        new_x = np.concatenate([x[cx:], x2[:cx2]])
        new_phrase = phrase[cp:] + phrase2[:cp2]
        weight = 1 - c
    new_score = None if score is None or score2 is None else weight * score + (1 - weight) * score2
    return new_x, new_phrase, new_score


# ----------------------------------------------------------------------------------------------------------------------
# Probability structure
# ----------------------------------------------------------------------------------------------------------------------


class Transform:
    """Base of the structure nodes: ``node(x, rng, force=False, trace=None) -> x``."""

    name: str
    p: float

    def __call__(self, x: Array, rng: np.random.Generator, force: bool = False, trace: list | None = None) -> Array:
        raise NotImplementedError


@dataclass(frozen=True)
class Apply(Transform):
    """Run ``fn(x, rng, **kwargs)`` when forced, else with probability ``p`` (albumentations ``BasicTransform``)."""

    name: str
    fn: Fn
    p: float = 1.0
    kwargs: dict = field(default_factory=dict)

    def __call__(self, x, rng, force=False, trace=None):
        if force or rng.random() < self.p:
            if trace is not None:
                trace.append(self.name)
            return self.fn(x, rng, **self.kwargs)
        return x


@dataclass(frozen=True)
class OneOf(Transform):
    """With probability ``p``, pick one child with probability ∝ its ``p`` and call it forced.

    ``honour_force=False`` reproduces the reference (**QUIRK**, §3.8): being forced does not skip this node's own
    ``p`` check. ``honour_force=True``: a forced ``OneOf`` always applies a child.
    """

    name: str
    children: tuple[Transform, ...]
    p: float = 1.0
    honour_force: bool = False

    def __call__(self, x, rng, force=False, trace=None):
        if (force and self.honour_force) or rng.random() < self.p:
            u = rng.random() * sum(c.p for c in self.children)
            for child in self.children[:-1]:
                u -= child.p
                if u < 0:
                    break
            else:
                child = self.children[-1]
            return child(x, rng, force=True, trace=trace)
        return x


@dataclass(frozen=True)
class OnWindows(Transform):
    """Apply ``inner`` (forced, drawn afresh per window) on random time windows (:func:`on_windows`).

    ``double_check=True`` reproduces the reference (**QUIRK**, §3.7): ``p`` is tested twice, effective ``p²``.
    """

    name: str
    inner: Transform
    p: float = 0.75
    window_size: tuple[float, float] = (0.25, 0.5)
    num_windows: tuple[int, int] = (2, 3)
    double_check: bool = True

    def __call__(self, x, rng, force=False, trace=None):
        if not (force or rng.random() < self.p):
            return x
        if self.double_check and not rng.random() < self.p:
            return x
        if trace is not None:
            trace.append(self.name)
        return on_windows(x, rng, lambda w, r: self.inner(w, r, force=True), self.window_size, self.num_windows)


@dataclass(frozen=True)
class Compose(Transform):
    """Run every child in order, each with its own probability (albumentations ``Compose``, p = 1)."""

    children: tuple[Transform, ...]
    name: str = "compose"
    p: float = 1.0

    def __call__(self, x, rng, force=False, trace=None):
        for child in self.children:
            x = child(x, rng, trace=trace)
        return x

    def names(self) -> list[str]:
        """Names of every node, depth first (for logging)."""
        out = []

        def walk(node):
            out.append(node.name)
            for child in getattr(node, "children", ()):
                walk(child)
            if isinstance(node, OnWindows):
                walk(node.inner)

        for child in self.children:
            walk(child)
        return out


@dataclass(frozen=True)
class Augmentation:
    """A round's training augmentation: flip and outer CutMix probabilities (run by the sample pipeline before the
    list, §3.0) and the config's ``Compose`` list, applied to a sample with probability ``list_p`` (1 = always, the
    reference; below 1, beyond the reference, a short training sees more clean samples)."""

    flip_p: float
    cutmix_p: float
    transforms: Compose
    round: int
    list_p: float = 1.0

    def __call__(self, x: Array, rng: np.random.Generator, trace: list | None = None) -> Array:
        """Apply the ``Compose`` list only (flip and CutMix need the sample context; see ``aslfs.data.sample``)."""
        if self.list_p < 1.0 and rng.random() >= self.list_p:  # no draw at list_p = 1: the reference's stream
            return x
        return self.transforms(x, rng, trace=trace)


def build_augmentation(params=None, round: int = 2) -> Augmentation:
    """The reference's augmentation of ``round`` 1 (cfg_1) or 2 (cfg_2) (§3.11), with the switches of ``params``.

    Args:
        params: :class:`aslfs.config.AugmentParams` (defaults when ``None``: faithful).
        round: 1 or 2.

    cfg_1: Resample(0.5–1.5, p .8) → SpatialAffine(cfg_1 row, p .75) → TemporalMask(1 × 0.2–0.4, p .5) →
    SpatialMask(p .5).
    cfg_2: Resample(0.3–2.0, p .8) → DynamicResample(p .25) → TimeShift(p .5) → SpatialAffine(cfg_2 row, p .75) →
    OnWindows(FingersDrop)(p .75, tested twice) → OneOf(p 1)[OneOf(p .5)[PoseDrop2 .7, FaceDrop .5], HandDrop2 .05] →
    OneOf(p .5)[TemporalMask 1 × 0.2–0.4, 2 × 0.1–0.2, 4 × 0.05–0.1] → SpatialMask(p .5).
    """
    if params is None:
        from aslfs.config import AugmentParams

        params = AugmentParams()
    inclusive = params.temporal_mask_inclusive_counts
    smask = Apply("spatial_mask", spatial_mask, 0.5, {"size": (0.05, 0.1), "fixed": params.spatial_mask_fixed})
    if round == 1:
        children = (
            Apply("resample", resample, 0.8, {"rate": (0.5, 1.5)}),
            Apply("spatial_affine", spatial_affine, 0.75,
                  {"scale": (0.8, 1.2), "shear": (-0.15, 0.15), "shift": (-0.1, 0.1), "degree": (-30.0, 30.0),
                   "keep_missing": params.affine_keep_missing}),
            Apply("temporal_mask", temporal_mask, 0.5, {"size": (0.2, 0.4), "num_masks": (1, 2), "inclusive": inclusive}),
            smask,
        )
    elif round == 2:
        force = params.one_of_force_fixed
        children = (
            Apply("resample", resample, 0.8, {"rate": (0.3, 2.0)}),
            Apply("dynamic_resample", dynamic_resample, 0.25, {"rate": (0.9, 1.1), "windows": (20, 30)}),
            Apply("time_shift", time_shift, 0.5, {"shift": (-10, 10)}),
            Apply("spatial_affine", spatial_affine, 0.75,
                  {"scale": (0.7, 1.3), "shear": (-0.2, 0.2), "shift": (-0.15, 0.15), "degree": (-30.0, 30.0),
                   "keep_missing": params.affine_keep_missing}),
            OnWindows("fingers_drop", Apply("fingers_drop_window", fingers_drop, 1.0,
                                            {"n_fingers": (2, 6), "fixed": params.fingers_drop_fixed}),
                      p=0.75, window_size=(0.25, 0.5), num_windows=(2, 3),
                      double_check=not params.on_windows_single_check),
            OneOf("body_part_drop", (
                OneOf("pose_or_face_drop", (Apply("pose_drop2", pose_drop2, 0.7), Apply("face_drop", face_drop, 0.5)),
                      p=0.5, honour_force=force),
                Apply("hand_drop2", hand_drop2, 0.05),
            ), p=1.0, honour_force=force),
            OneOf("temporal_mask", (
                Apply("temporal_mask_1", temporal_mask, 0.5,
                      {"size": (0.2, 0.4), "num_masks": (1, 2), "inclusive": inclusive}),
                Apply("temporal_mask_2", temporal_mask, 0.5,
                      {"size": (0.1, 0.2), "num_masks": (2, 3), "inclusive": inclusive}),
                Apply("temporal_mask_4", temporal_mask, 0.5,
                      {"size": (0.05, 0.1), "num_masks": (4, 5), "inclusive": inclusive}),
            ), p=0.5, honour_force=force),
            smask,
        )
    else:
        raise ValueError(f"build_augmentation: round must be 1 or 2, got {round!r}")
    return Augmentation(flip_p=params.flip_p, cutmix_p=params.cutmix_p, transforms=Compose(children), round=round,
                        list_p=params.list_p)
