import numpy as np
from keras import ops

from aslfs.layers.feature_extractor import FeatureExtractor


def _numpy_reference(x, mask, kernel, dense, mask_stem):
    """The extractor in plain numpy: torch-style Conv2d(padding=1, stride (1, 2)), BN2d, SiLU, flatten, Linear, BN1d."""
    b, t, n, _ = x.shape
    x = np.where(mask[:, :, None, None], x, 0.0)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    w = (n - 1) // 2 + 1
    conv = np.zeros((b, t, w, kernel.shape[-1]))
    for i in range(t):
        for j in range(w):
            patch = xp[:, i:i + 3, 2 * j:2 * j + 3, :]  # (B, 3, 3, 3)
            conv[:, i, j] = np.einsum("bhwc,hwco->bo", patch, kernel)
    sel = conv[mask] if mask_stem else conv.reshape(-1, *conv.shape[2:])
    mean, var = sel.mean(axis=(0, 1)), sel.var(axis=(0, 1))
    h = (conv - mean) / np.sqrt(var + 1e-5)
    h = h / (1 + np.exp(-h))
    h = h.reshape(b, t, -1) @ dense  # landmark-major, channel-minor
    mean, var = h[mask].mean(0), h[mask].var(0)
    h = (h - mean) / np.sqrt(var + 1e-5)
    return np.where(mask[:, :, None], h, 0.0)


def _run(mask_stem):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 5, 3)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]], bool)
    x[~mask] = np.nan  # garbage at pads
    fe = FeatureExtractor(4, stem_channels=2, mask_stem_batchnorm=mask_stem)
    out = ops.convert_to_numpy(fe(x, padding_mask=mask, training=True))
    kernel = ops.convert_to_numpy(fe.stem_conv.kernel)
    dense = ops.convert_to_numpy(fe.projection.kernel)
    assert kernel.shape == (3, 3, 3, 2) and dense.shape == (3 * 2, 4)  # W = ceil(5 / 2) = 3
    expected = _numpy_reference(np.nan_to_num(x), mask, kernel, dense, mask_stem)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    assert np.all(out[~mask] == 0.0)


def test_matches_numpy_reference_masked_stem():
    _run(True)


def test_matches_numpy_reference_unmasked_stem():
    _run(False)


def test_parameter_counts_match_reference_table():
    def count(n, d):
        fe = FeatureExtractor(d)
        fe.build((None, None, n, 3))
        return sum(int(np.prod(w.shape)) for w in fe.trainable_weights)

    # docs/reference.md §4.1
    assert count(130, 144) == 300_736
    assert count(130, 208) == 433_984
    assert count(21, 52) == 19_336
    assert count(76, 52) == 64_264
    assert count(12, 52) == 11_016
