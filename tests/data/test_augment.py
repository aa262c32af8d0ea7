"""Augmentations (docs/reference.md §3): each one changes what it should and nothing else, and the probability
structure measured over many draws matches the figures of docs/reference.md §3."""

from collections import Counter

import numpy as np
import pytest

from aslfs import landmarks as lm
from aslfs.config import AugmentParams
from aslfs.data import augment as A


class ScriptedRng:
    """Stands in for a Generator: ``random()`` returns scripted values (for hand-derived golden tests)."""

    def __init__(self, values):
        self.values = list(values)

    def random(self, size=None):
        assert size is None
        return self.values.pop(0)


def seq(t=40, seed=0, missing_hand=True):
    """A normalised-looking sequence: random values, the right hand missing (0) in the first half."""
    x = np.random.default_rng(seed).standard_normal((t, 130, 3)).astype(np.float32)
    if missing_hand:
        x[: t // 2, lm.RIGHT_HAND] = 0
    return x


def ramp(t, n=130):
    """Frame t holds value t + 1 everywhere (so a frame's source is readable and 0 means zero-filled)."""
    return np.broadcast_to((np.arange(t, dtype=np.float32) + 1)[:, None, None], (t, n, 3)).copy()


def only_changed(before, after):
    """(frames, landmarks) where anything differs."""
    d = (before != after).any(-1)
    return np.flatnonzero(d.any(1)), np.flatnonzero(d.any(0))


# ---------------------------------------------------------------------------------------------------- flip


def test_flip_negates_x_permutes_and_is_an_involution():
    x = seq()
    y = A.flip(x)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.array_equal(y[..., 0], -x[:, lm.FLIP_INDEX, 0])
    assert np.array_equal(y[..., 1:], x[:, lm.FLIP_INDEX, 1:]), "y and z are only permuted"
    assert np.array_equal(A.flip(y), x)
    # left hand <-> right hand position by position
    assert np.array_equal(y[:, lm.LEFT_HAND, 2], x[:, lm.RIGHT_HAND, 2])
    # mirror pairs of the pose: pose_12 <-> pose_11
    i12, i11 = lm.LANDMARKS.index("pose_12"), lm.LANDMARKS.index("pose_11")
    assert np.array_equal(y[:, i12, 1], x[:, i11, 1])


def test_flip_does_not_modify_input():
    x = seq()
    x0 = x.copy()
    A.flip(x)
    assert np.array_equal(x, x0)


# ---------------------------------------------------------------------------------------------------- resample


def test_nearest_indices_golden():
    assert A.nearest_indices(5, 3).tolist() == [0, 1, 3]
    assert A.nearest_indices(4, 8).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert A.nearest_indices(450, 384)[[0, 1, 383]].tolist() == [0, 1, 448]  # ⌊383·450/384⌋ = 448
    assert A.nearest_indices(7, 7).tolist() == list(range(7))


@pytest.mark.parametrize("t", [1, 2, 17, 160])
def test_resample_length_and_frames(t):
    x = ramp(t)
    for seed in range(20):
        r = np.random.default_rng(seed).uniform(0.3, 2.0)
        y = A.resample(x, np.random.default_rng(seed), rate=(0.3, 2.0))
        n = max(int(t * r), 1)
        assert y.shape == (n, 130, 3)
        assert np.array_equal(y, x[A.nearest_indices(t, n)])


def test_dynamic_resample_is_monotone_local_warp():
    x = ramp(160)
    lengths = []
    for seed in range(200):
        y = A.dynamic_resample(x, np.random.default_rng(seed))
        src = y[:, 0, 0] - 1
        assert (np.diff(src) >= 0).all() and (np.diff(src) <= 2).all(), "local nearest warp keeps order"
        assert src[0] == 0 and (y == y[:, :1, :1]).all(), "whole frames are copied"
        lengths.append(len(y))
    # each chunk ~ U(0.9, 1.1)·len, truncated: total within [0.9·T − n_chunks, 1.1·T]
    assert 0.9 * 160 - 30 <= min(lengths) and max(lengths) <= 1.1 * 160
    # ⌊len_i·r_i⌋ truncates: a chunk of ~6 frames loses one frame when r_i < 1, so the mean shrinks by ~½ per chunk
    assert 160 - 0.5 * 29 - 3 < np.mean(lengths) < 160 - 0.5 * 20 + 3


def test_dynamic_resample_chunks_like_torch_chunk():
    # T = 6 with 20-29 windows: 6 rates, chunk size 1, each frame resampled to max(⌊1·r⌋, 1) = 1 or 1 → identity
    x = ramp(6)
    for seed in range(20):
        assert np.array_equal(A.dynamic_resample(x, np.random.default_rng(seed)), x)
    # T = 50, n windows: chunk size ⌈50/n⌉ = 2 for n in 25..29; ⌊2·r⌋ = 1 (r < 1) or 2 (r ≥ 1)
    y = A.dynamic_resample(ramp(50), np.random.default_rng(3))
    n = np.random.default_rng(3).integers(20, 30)
    assert 25 <= n  # this seed draws ≥ 25 windows
    assert 25 <= len(y) <= 50
    assert A.dynamic_resample(ramp(1), np.random.default_rng(0)).shape == (1, 130, 3)


# ---------------------------------------------------------------------------------------------------- time shift


def test_shift_time_kernel():
    x = ramp(12)
    y = A.shift_time(x, 3)
    assert y.shape[0] == 15 and (y[:3] == 0).all() and np.array_equal(y[3:], x)
    assert np.array_equal(A.shift_time(x, -4), x[4:])
    assert np.array_equal(A.shift_time(x, 0), x)
    assert np.array_equal(A.shift_time(x, -9), x[9:]), "-T + 2 < -9 ≤ 0"
    assert np.array_equal(A.shift_time(x, -10), x), "s = -T + 2 leaves the sequence unchanged"
    assert np.array_equal(A.shift_time(x, -11), x)


def test_time_shift_draws_minus_10_to_9():
    x = ramp(30)
    shifts = Counter(len(A.time_shift(x, np.random.default_rng(s))) - 30 for s in range(3000))
    assert set(shifts) == set(range(-10, 10))


# ---------------------------------------------------------------------------------------------------- affine


def test_affine_kernel_golden():
    x = np.zeros((1, 3, 3), np.float32)
    x[0, 0] = [1.0, 0.0, 5.0]
    x[0, 1] = [0.0, 2.0, -1.0]
    x[0, 2] = [1.0, 1.0, 0.0]
    z = x[..., 2].copy()
    y = A.affine_xy(x, 2.0, 0.0, 0.0, 0.0, 0.0)
    assert np.allclose(y[..., :2], 2 * x[..., :2]) and np.array_equal(y[..., 2], z)
    # shear_y = 0.5: x' = x + 0.5·y, y' = y
    y = A.affine_xy(x, 1.0, 0.0, 0.5, 0.0, 0.0)
    assert np.allclose(y[0, :, 0], [1.0, 1.0, 1.5]) and np.allclose(y[0, :, 1], [0.0, 2.0, 1.0])
    # shear_x = 0.5: y' = y + 0.5·x
    y = A.affine_xy(x, 1.0, 0.5, 0.0, 0.0, 0.0)
    assert np.allclose(y[0, :, 1], [0.5, 2.0, 1.5]) and np.allclose(y[0, :, 0], [1.0, 0.0, 1.0])
    # rotation by 90° about (0, 0): (x, y) -> (x·cos − y·sin, x·sin + y·cos) = (−y, x)
    y = A.affine_xy(x, 1.0, 0.0, 0.0, 0.0, 90.0)
    assert np.allclose(y[0, :, 0], [0.0, -2.0, -1.0], atol=1e-6) and np.allclose(y[0, :, 1], [1.0, 0.0, 1.0])
    # the same shift on x and y
    y = A.affine_xy(x, 1.0, 0.0, 0.0, 0.3, 0.0)
    assert np.allclose(y[..., :2], x[..., :2] + 0.3)
    # QUIRK: rotation about the centre (shear_y, shear_x) = (0.5, 0): point (1, 0) sheared stays (1, 0);
    # relative to the centre (0.5, 0), rotated 90° -> (0, 0.5), back -> (0.5, 0.5)
    y = A.affine_xy(x, 1.0, 0.0, 0.5, 0.0, 90.0)
    assert np.allclose(y[0, 0, :2], [0.5, 0.5], atol=1e-6) and y[0, 0, 2] == 5.0


def test_affine_keeps_z_moves_missing_unless_asked():
    x = seq()
    rng = np.random.default_rng(0)
    y = A.spatial_affine(x, rng)
    assert np.array_equal(y[..., 2], x[..., 2]), "z untouched"
    assert not np.allclose(y[..., :2], x[..., :2])
    miss = (x[..., 0] == 0) & (x[..., 1] == 0)
    assert miss.any() and not (y[miss][:, :2] == 0).all(), "faithful: missing landmarks are transformed too"
    y = A.spatial_affine(x, np.random.default_rng(0), keep_missing=True)
    assert (y[miss][:, :2] == 0).all() and not (y[~miss][:, :2] == 0).any()


def test_affine_parameter_draws(monkeypatch):
    seen = []
    monkeypatch.setattr(A, "affine_xy", lambda x, *args, **kw: seen.append(args) or x)
    rng = np.random.default_rng(0)
    for _ in range(4000):
        A.spatial_affine(np.zeros((1, 130, 3), np.float32), rng, scale=(0.7, 1.3), shear=(-0.2, 0.2),
                         shift=(-0.15, 0.15), degree=(-30, 30))
    s, shx, shy, t, d = np.array(seen).T
    assert 0.7 <= s.min() and s.max() <= 1.3 and abs(s.mean() - 1.0) < 0.01
    assert ((shx == 0) ^ (shy == 0)).all(), "exactly one shear component is non-zero"
    assert abs((shy != 0).mean() - 0.5) < 0.03
    assert np.abs(shx + shy).max() <= 0.2 and np.abs(t).max() <= 0.15 and np.abs(d).max() <= 30


# ---------------------------------------------------------------------------------------------------- fingers


def test_fingers_indices():
    assert lm.FINGERS.shape == (10, 4)
    assert lm.FINGERS[0].tolist() == [41, 42, 43, 44] and lm.FINGERS[9].tolist() == [78, 79, 80, 81]


def test_fingers_drop_only_fingers_whole_fingers():
    x = seq(missing_hand=False)
    for seed in range(50):
        y = A.fingers_drop(x, np.random.default_rng(seed))
        frames, marks = only_changed(x, y)
        assert len(frames) == len(x)
        assert set(marks) <= set(lm.FINGERS.ravel()), "wrists and non-hand landmarks untouched"
        dropped = [f for f in range(10) if (y[:, lm.FINGERS[f]] == 0).all()]
        assert sorted(marks) == sorted(lm.FINGERS[dropped].ravel()), "whole fingers, all frames, xyz = 0"


def test_fingers_drop_counts_faithful_and_fixed():
    rng = np.random.default_rng(0)
    n = np.array([len(A.draw_fingers(rng)) for _ in range(20000)])
    assert n.min() >= 4 and n.max() <= 10  # 12 draws from 10 (docs/reference.md §3.7: 4-10 distinct)
    assert abs(n.mean() - 7.2) < 0.05  # 10·(1 − 0.9¹²) = 7.18
    fixed = [A.draw_fingers(rng, fixed=True) for _ in range(8000)]
    counts = Counter(len(f) for f in fixed)
    assert set(counts) == {2, 3, 4, 5} and all(abs(c / 8000 - 0.25) < 0.02 for c in counts.values())
    assert all(len(set(f.tolist())) == len(f) for f in fixed), "distinct fingers"


def test_on_windows_changes_only_two_windows():
    x = ramp(100)
    for seed in range(100):
        rng = np.random.default_rng(seed)
        y = A.on_windows(x, rng, lambda w, r: np.zeros_like(w))
        rng = np.random.default_rng(seed)
        assert rng.integers(2, 3) == 2
        f = rng.uniform(0.25, 0.5, size=2)
        o = rng.random(2)
        expect = np.zeros(100, bool)
        for start, stop in A.window_bounds(100, f, o):
            assert 25 <= stop - start <= 50
            expect[start:stop] = True
        assert np.array_equal((y == 0).all((1, 2)), expect)
        assert np.array_equal(y[~expect], x[~expect])


def test_window_bounds_golden():
    # size ⌊10·0.35⌋ = 3, offset ⌊0.5·clip(7, 1, 10)⌋ = 3; size ⌊10·0.05⌋ = 0
    assert A.window_bounds(10, [0.35, 0.05], [0.5, 0.99]) == [(3, 6), (9, 9)]
    assert A.window_bounds(2, [0.5], [0.999]) == [(0, 1)]  # room = clip(1, 1, 2) = 1


@pytest.mark.parametrize("single, expected", [(False, 0.5625), (True, 0.75)])
def test_on_windows_effective_probability(single, expected):
    aug = A.build_augmentation(AugmentParams(on_windows_single_check=single), 2)
    node = aug.transforms.children[4]
    assert isinstance(node, A.OnWindows)
    rng = np.random.default_rng(0)
    x = np.ones((4, 130, 3), np.float32)
    fired = 0
    for _ in range(20000):
        trace = []
        node(x, rng, trace=trace)
        fired += trace == ["fingers_drop"]
    assert abs(fired / 20000 - expected) < 0.012


# ---------------------------------------------------------------------------------------------------- body parts


def test_pose_drop_subsets_exactly_as_reference():
    names = [sorted(lm.LANDMARKS[i] for i in s) for s in A.POSE_DROP_SUBSETS]
    all_pose = sorted(f"pose_{i}" for i in range(11, 23))
    assert names[0] == all_pose
    assert names[1] == sorted(set(all_pose) - {"pose_12", "pose_14"})
    assert names[2] == sorted(set(all_pose) - {"pose_12", "pose_14", "pose_16", "pose_18"})
    assert names[3] == sorted(f"pose_{i}" for i in (11, 13, 15, 17, 19, 21))


def test_pose_drop2_uniform_and_only_pose():
    x = seq(t=3, missing_hand=False)
    rng = np.random.default_rng(0)
    seen = Counter()
    for _ in range(4000):
        y = A.pose_drop2(x, rng)
        frames, marks = only_changed(x, y)
        assert len(frames) == 3 and set(marks) <= set(lm.POSE) and (y[:, marks] == 0).all()
        seen[len(marks)] += 1
    assert set(seen) == {12, 10, 8, 6} and all(abs(c / 4000 - 0.25) < 0.03 for c in seen.values())


@pytest.mark.parametrize("fn, part", [(A.face_drop, lm.FACE), (A.hand_drop2, lm.HANDS)])
def test_face_and_hand_drop_touch_only_their_part(fn, part):
    x = seq(missing_hand=False)
    y = fn(x, np.random.default_rng(0))
    frames, marks = only_changed(x, y)
    assert len(frames) == len(x) and sorted(marks) == sorted(part) and (y[:, part] == 0).all()
    assert len(part) == (76 if fn is A.face_drop else 42)


def _body_part_frequencies(params, n=20000):
    node = A.build_augmentation(params, 2).transforms.children[5]
    assert node.name == "body_part_drop"
    rng = np.random.default_rng(0)
    x = np.ones((1, 130, 3), np.float32)
    out = Counter()
    for _ in range(n):
        trace = []
        node(x, rng, trace=trace)
        assert len(trace) <= 1
        out[trace[0] if trace else "none"] += 1
    return {k: v / n for k, v in out.items()}


def test_body_part_one_of_structure_faithful():
    f = _body_part_frequencies(AugmentParams())
    # docs/reference.md §3.8: 0.909·0.5·0.583 = 0.265, 0.909·0.5·0.417 = 0.189, 0.091, 0.455
    for k, p in {"pose_drop2": 0.265, "face_drop": 0.189, "hand_drop2": 0.091, "none": 0.455}.items():
        assert abs(f[k] - p) < 0.012, (k, f[k], p)


def test_body_part_one_of_structure_force_fixed():
    f = _body_part_frequencies(AugmentParams(one_of_force_fixed=True))
    for k, p in {"pose_drop2": 0.530, "face_drop": 0.379, "hand_drop2": 0.091}.items():
        assert abs(f[k] - p) < 0.012, (k, f[k], p)
    assert "none" not in f


# ---------------------------------------------------------------------------------------------------- temporal mask


def test_temporal_mask_zeroes_whole_frames_only():
    x = ramp(100)
    for seed in range(50):
        y = A.temporal_mask(x, np.random.default_rng(seed), size=(0.2, 0.4))
        zero = (y == 0).all((1, 2))
        assert 20 <= zero.sum() <= 40
        assert np.array_equal(y[~zero], x[~zero]), "other frames untouched"
        assert np.ptp(np.flatnonzero(zero)) + 1 == zero.sum(), "one contiguous window"


@pytest.mark.parametrize("counts, inclusive, expected", [
    ((1, 2), False, {1}), ((2, 3), False, {2}), ((4, 5), False, {4}),
    ((1, 2), True, {1, 2}), ((2, 3), True, {2, 3}), ((4, 5), True, {4, 5}),
])
def test_temporal_mask_window_counts(monkeypatch, counts, inclusive, expected):
    seen = []
    monkeypatch.setattr(A, "mask_frames", lambda x, w: seen.append(len(w)) or x)
    rng = np.random.default_rng(0)
    for _ in range(300):
        A.temporal_mask(np.zeros((50, 1, 1), np.float32), rng, num_masks=counts, inclusive=inclusive)
    assert set(seen) == expected


def test_temporal_mask_cfg2_visible_segments():
    node = A.build_augmentation(AugmentParams(), 2).transforms.children[6]
    assert node.name == "temporal_mask" and [c.p for c in node.children] == [0.5, 0.5, 0.5]
    rng = np.random.default_rng(0)
    x = np.ones((160, 1, 1), np.float32)
    counts = np.zeros(6)
    n = 20000
    for _ in range(n):
        z = (node(x, rng)[:, 0, 0] == 0).astype(np.int8)
        counts[int(z[0] + (np.diff(z) == 1).sum())] += 1
    f = counts / n
    assert abs(f[0] - 0.5) < 0.01 and f[5] == 0
    # docs/reference.md §3.9 [measured]: 0 → 0.51, 1 → 0.21, 2 → 0.14, 3 → 0.08, 4 → 0.05
    assert np.allclose(f[:5], [0.51, 0.21, 0.14, 0.08, 0.05], atol=0.02), f


# ---------------------------------------------------------------------------------------------------- spatial mask


def test_spatial_mask_faithful_is_identity():
    x = seq()
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert A.spatial_mask(x, rng) is x
    aug = A.build_augmentation(AugmentParams(), 1)
    node = aug.transforms.children[-1]
    assert node.name == "spatial_mask" and node.p == 0.5
    assert node(x, rng, force=True) is x


def test_spatial_mask_fixed_masks_a_small_box():
    x = seq(t=60, missing_hand=False)
    rng = np.random.default_rng(0)
    fractions = []
    for _ in range(200):
        y = A.spatial_mask(x, rng, size=(0.05, 0.1), fixed=True)
        hit = (y != x).any(-1)
        assert (y[hit] == 0).all(), "masked landmarks are zero in x, y and z"
        if hit.any():
            ex = np.ptp(x[..., 0])
            ey = np.ptp(x[..., 1])
            assert np.ptp(x[..., 0][hit]) <= 0.1 * ex and np.ptp(x[..., 1][hit]) <= 0.1 * ey
        fractions.append(hit.mean())
    assert 0 < np.mean(fractions) < 0.01 and np.mean(np.array(fractions) > 0) > 0.5


# ---------------------------------------------------------------------------------------------------- cutmix


def test_outer_cutmix_golden():
    x, x2 = ramp(10), 100 + ramp(20)
    # c = 0.3: phrase cuts round(1.8) = 2, round(2.4) = 2; frame cuts 3, 6
    y, ph, sc = A.outer_cutmix(x, "abcdef", 0.8, x2, "UVWXYZ12", 0.2, ScriptedRng([0.3, 0.2]))
    assert ph == "WXYZ12" + "ab", "partner tail first, then anchor head"
    assert np.array_equal(y, np.concatenate([x2[6:], x[:3]]))
    assert np.isclose(sc, 0.3 * 0.8 + 0.7 * 0.2)
    y, ph, sc = A.outer_cutmix(x, "abcdef", 0.8, x2, "UVWXYZ12", 0.2, ScriptedRng([0.3, 0.7]))
    assert ph == "cdef" + "UV" and np.array_equal(y, np.concatenate([x[3:], x2[:6]]))
    assert np.isclose(sc, 0.3 * 0.2 + 0.7 * 0.8)
    # clip to [1, n − 1]: c ≈ 0 still keeps one head character / frame
    y, ph, _ = A.outer_cutmix(x, "abc", None, x2, "xyz", None, ScriptedRng([0.001, 0.7]))
    assert ph == "bc" + "x" and len(y) == 9 + 1
    # a one-character phrase gets cut 0 (NumPy clip with lo > hi)
    _, ph, sc = A.outer_cutmix(x, "a", 1.0, x2, "xyz", None, ScriptedRng([0.5, 0.7]))
    assert ph == "a" + "xy" and sc is None  # partner cut round(3·0.5) = 2


def test_outer_cutmix_uses_rng_and_keeps_inputs():
    x, x2 = seq(30), seq(50, seed=1)
    x0, x20 = x.copy(), x2.copy()
    rng = np.random.default_rng(0)
    for _ in range(100):
        y, ph, sc = A.outer_cutmix(x, "hello", 1.0, x2, "world wide", 0.0, rng)
        assert 0 <= sc <= 1 and len(y) >= 2
    assert np.array_equal(x, x0) and np.array_equal(x2, x20)


# ---------------------------------------------------------------------------------------------------- structure


def test_build_lists_match_reference_order():
    a1 = A.build_augmentation(AugmentParams(), 1)
    assert [c.name for c in a1.transforms.children] == ["resample", "spatial_affine", "temporal_mask", "spatial_mask"]
    assert [c.p for c in a1.transforms.children] == [0.8, 0.75, 0.5, 0.5]
    a2 = A.build_augmentation(AugmentParams(), 2)
    assert [c.name for c in a2.transforms.children] == [
        "resample", "dynamic_resample", "time_shift", "spatial_affine", "fingers_drop", "body_part_drop",
        "temporal_mask", "spatial_mask"]
    assert [c.p for c in a2.transforms.children] == [0.8, 0.25, 0.5, 0.75, 0.75, 1.0, 0.5, 0.5]
    assert a2.transforms.children[0].kwargs["rate"] == (0.3, 2.0) and a1.transforms.children[0].kwargs["rate"] == (0.5, 1.5)
    assert (a2.flip_p, a2.cutmix_p) == (0.5, 0.5)
    with pytest.raises(ValueError):
        A.build_augmentation(AugmentParams(), 3)


def test_apply_probabilities_measured():
    a2 = A.build_augmentation(AugmentParams(), 2)
    rng = np.random.default_rng(0)
    x = np.ones((8, 130, 3), np.float32)
    n = 6000
    counts = Counter()
    for _ in range(n):
        trace = []
        a2(x, rng, trace=trace)
        counts.update(trace)
    for name, p in {"resample": 0.8, "dynamic_resample": 0.25, "time_shift": 0.5, "spatial_affine": 0.75,
                    "fingers_drop": 0.5625, "spatial_mask": 0.5, "temporal_mask_1": 1 / 6, "temporal_mask_2": 1 / 6,
                    "temporal_mask_4": 1 / 6}.items():
        assert abs(counts[name] / n - p) < 0.025, (name, counts[name] / n, p)


def test_pipeline_is_pure_and_deterministic():
    x = seq(120)
    x0 = x.copy()
    for rnd in (1, 2):
        for flags in ({}, {"spatial_mask_fixed": True, "fingers_drop_fixed": True, "affine_keep_missing": True}):
            aug = A.build_augmentation(AugmentParams(**flags), rnd)
            for seed in range(30):
                y1 = aug(x, np.random.default_rng(seed))
                y2 = aug(x, np.random.default_rng(seed))
                assert np.array_equal(y1, y2) and y1.dtype == np.float32 and y1.shape[1:] == (130, 3)
                assert len(y1) >= 1
    assert np.array_equal(x, x0), "no augmentation modifies its input"


def test_short_sequences_survive():
    for rnd in (1, 2):
        aug = A.build_augmentation(AugmentParams(spatial_mask_fixed=True), rnd)
        for t in (1, 2, 3):
            for seed in range(50):
                y = aug(seq(t, missing_hand=False), np.random.default_rng(seed))
                assert y.ndim == 3 and len(y) >= 1 and np.isfinite(y).all()


def test_list_p_applies_the_list_to_that_fraction_of_samples():
    x = seq(60, seed=3)
    never = A.build_augmentation(AugmentParams(list_p=0.0), 2)
    assert never(x, np.random.default_rng(0)) is x
    # list_p = 1 draws nothing extra: the same random stream as the reference
    ref, full = A.build_augmentation(AugmentParams(), 2), A.build_augmentation(AugmentParams(list_p=1.0), 2)
    np.testing.assert_array_equal(ref(x, np.random.default_rng(5)), full(x, np.random.default_rng(5)))
    some = A.build_augmentation(AugmentParams(list_p=0.3), 2)
    rng = np.random.default_rng(7)
    applied = 0
    for _ in range(2000):
        trace = []
        some(x, rng, trace=trace)
        applied += bool(trace)
    # cfg_2 applies at least one transform to almost every sample it sees (OneOf p 1 inside): ≈ 0.3
    assert abs(applied / 2000 - 0.3) < 0.04
