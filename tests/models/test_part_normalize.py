import numpy as np
from keras import ops

from aslfs.landmarks import PARTS
from aslfs.models.part_normalize import PART_ORDER, part_normalize, split_parts


def test_per_frame_per_axis_standardisation_and_dropped_rule():
    x = np.zeros((1, 2, 130, 3), "float32")
    hand = PARTS["left_hand"]
    x[0, 0, hand, 0] = np.arange(21)  # x = 0..20, y = 1 everywhere, z = 2 * x
    x[0, 0, hand, 1] = 1.0
    x[0, 0, hand, 2] = 2 * np.arange(21)
    x[0, 0, hand[5], :2] = [3.0, -3.0]  # x + y == 0: dropped, but still counted in mean/std
    out = ops.convert_to_numpy(part_normalize(x, hand))
    assert out.shape == (1, 2, 21, 3)
    xs = x[0, 0, hand, 0]
    expected_x = (xs - xs.mean()) / xs.std()
    expected_x[5] = 0.0
    np.testing.assert_allclose(out[0, 0, :, 0], expected_x, rtol=1e-5, atol=1e-6)
    ys = x[0, 0, hand, 1]  # 1.0 except -3 at landmark 5
    expected_y = (ys - ys.mean()) / ys.std()
    expected_y[5] = 0.0
    np.testing.assert_allclose(out[0, 0, :, 1], expected_y, rtol=1e-5, atol=1e-6)
    assert out[0, 0, 5, 2] == 0.0
    assert np.all(out[0, 1] == 0.0)  # an all-zero frame (missing hand, or a pad) gives 0, not NaN


def test_constant_part_gives_zero_and_parts_in_order():
    x = np.random.default_rng(0).normal(size=(2, 3, 130, 3)).astype("float32")
    x[:, :, PARTS["pose"]] = 0.5  # constant part (exact mean): std 0 -> 0 (the reference's NaN -> 0)
    parts = [ops.convert_to_numpy(p) for p in split_parts(x)]
    assert [p.shape[2] for p in parts] == [len(PARTS[name]) for name in PART_ORDER] == [21, 21, 76, 12]
    assert np.all(parts[3] == 0.0)
    assert np.all(np.isfinite(np.concatenate([p.reshape(-1) for p in parts])))
    face = x[:, :, PARTS["face"]]
    np.testing.assert_allclose(parts[2], (face - face.mean(2, keepdims=True)) / face.std(2, keepdims=True),
                               rtol=1e-4, atol=1e-5)
