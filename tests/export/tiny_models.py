"""Random-weight ``tiny`` members and raw test sequences for the export tests (imported by ``conftest.py`` and by
test modules that need their own members)."""

from __future__ import annotations

import numpy as np

from helpers import make_frames, selected

#: raw frame counts of the parity set: below/at/above the rule (15), the tiny max_len (64) and the reference 384
LENGTHS = (15, 16, 20, 30, 33, 40, 63, 64, 65, 80, 100, 150, 200, 300, 383, 384, 385, 450, 600, 1000)


def randomize(model, seed: int, gain: float = 1.5, end_boost: float = 0.6) -> None:
    """Replace every weight by a random value large enough that the outputs depend on the input (the initial weights
    give the same phrase for every sequence). BatchNorm statistics stay valid; the decoder's fixed position table is
    kept; the end id's lm_head column is raised so that some phrases end before 32 characters."""
    from aslfs.vocab import END_ID

    rng = np.random.default_rng(seed)
    for w in model.weights:
        name, shape = w.path, tuple(w.shape)
        if "position_table" in name:
            continue
        if "moving_variance" in name:
            value = rng.uniform(0.5, 1.5, shape)
        elif "moving_mean" in name:
            value = rng.normal(0.0, 0.1, shape)
        elif "gamma" in name:
            value = 1.0 + rng.normal(0.0, 0.1, shape)
        elif len(shape) >= 2:
            value = rng.normal(0.0, gain / np.sqrt(np.prod(shape[:-1])), shape)
            if "lm_head" in name:
                value[:, END_ID] += end_boost * value.std() * np.sqrt(shape[0])
        else:
            value = rng.normal(0.0, 0.1, shape)
        w.assign(value.astype("float32"))


def make_sequences(lengths=LENGTHS, seed: int = 7) -> list[np.ndarray]:
    """Raw (T, 390) float32 sequences in ``SELECTED_COLUMNS`` order, hands NaN in about 30% of the frames."""
    rng = np.random.default_rng(seed)
    return [selected(make_frames(rng, t)) for t in lengths]
