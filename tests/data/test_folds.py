"""Participant-grouped folds: disjoint, balanced, deterministic, supplemental rows included."""

import numpy as np
import pandas as pd
import pytest

from aslfs.data.folds import make_folds
from aslfs.errors import DataError


def _index(counts_train, counts_supp=None, seed=0):
    """Index rows for participants with the given train / supplemental sequence counts, interleaved."""
    rows = []
    counts_supp = counts_supp or {}
    sid = 0
    for pid in sorted(set(counts_train) | set(counts_supp)):
        for supp, n in ((False, counts_train.get(pid, 0)), (True, counts_supp.get(pid, 0))):
            for _ in range(n):
                rows.append({"sequence_id": 1000 + sid, "participant_id": pid, "is_supplemental": supp})
                sid += 1
    df = pd.DataFrame(rows)
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module")
def realistic():
    """About the real shape: 94 signers, skewed train counts (67k in all), supplemental for most of them."""
    rng = np.random.default_rng(0)
    train = {p: int(c) for p, c in enumerate(rng.lognormal(6.2, 0.7, 94).astype(int) + 20)}
    supp = {p: int(c) for p, c in enumerate(rng.lognormal(5.5, 1.0, 94).astype(int)) if p % 7}
    supp[200] = 40  # a participant with supplemental sequences only
    return _index(train, supp)


def test_hand_worked_greedy_assignment():
    # train counts A=5, B=4, C=3, D=2, E=2 into 2 folds, largest first, each to the lighter fold:
    # A->0 (5,0), B->1 (5,4), C->1 (5,7), D->0 (7,7), E: tie on train and total -> lower fold 0 (9,7)
    df = _index({"A": 5, "B": 4, "C": 3, "D": 2, "E": 2})
    for seed in (0, 1, 2, 3):
        folds = make_folds(df, 2, seed)
        got = folds.groupby("participant_id").fold.first().to_dict()
        assert got == {"A": 0, "B": 1, "C": 1, "D": 0, "E": 0}


def test_participant_disjoint_and_complete(realistic):
    folds = make_folds(realistic, 4, 42)
    assert folds.sequence_id.tolist() == realistic.sequence_id.tolist(), "rows in input order"
    assert folds.is_supplemental.tolist() == realistic.is_supplemental.tolist()
    assert set(folds.fold) == {0, 1, 2, 3}
    assert (folds.groupby("participant_id").fold.nunique() == 1).all(), "a participant lives in one fold"
    assert folds.loc[folds.participant_id == 200, "fold"].notna().all()
    assert folds.fold.dtype == np.int64


def test_balanced_by_train_sequences(realistic):
    folds = make_folds(realistic, 4, 42)
    train = folds[~folds.is_supplemental].groupby("fold").size()
    largest = realistic[~realistic.is_supplemental].groupby("participant_id").size().max()
    assert (train.max() - train.min()) <= largest  # the greedy bound
    assert (train - train.mean()).abs().max() / train.mean() < 0.03, train.to_dict()


def test_supplemental_rows_follow_their_participant(realistic):
    folds = make_folds(realistic, 4, 42)
    by_pid = folds[~folds.is_supplemental].groupby("participant_id").fold.first()
    supp = folds[folds.is_supplemental & folds.participant_id.isin(by_pid.index)]
    assert len(supp) > 0
    assert (supp.fold.to_numpy() == by_pid.loc[supp.participant_id].to_numpy()).all()


def test_stable_for_a_seed_and_order_free(realistic):
    a = make_folds(realistic, 4, 42)
    b = make_folds(realistic, 4, 42)
    assert a.equals(b)
    shuffled = realistic.sample(frac=1.0, random_state=9)
    c = make_folds(shuffled, 4, 42)
    fa = a.set_index("sequence_id").fold
    fc = c.set_index("sequence_id").fold
    assert (fa.loc[fc.index] == fc).all(), "assignment does not depend on row order"


def test_seed_breaks_ties():
    df = _index({p: 10 for p in range(8)})
    assignments = {tuple(make_folds(df, 4, s).groupby("participant_id").fold.first()) for s in range(6)}
    assert len(assignments) > 1
    for s in range(3):
        assert (make_folds(df, 4, s)[lambda d: ~d.is_supplemental].groupby("fold").size() == 20).all()


def test_too_few_participants():
    with pytest.raises(DataError) as err:
        make_folds(_index({1: 5, 2: 5, 3: 5}), 4, 0)
    assert "4 folds" in str(err.value) and "3" in str(err.value)
