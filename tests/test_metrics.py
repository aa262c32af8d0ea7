"""Metrics against hand-computed values (docs/reference.md §1.8, §6.3)."""

import numpy as np
import pytest

from aslfs.metrics import (cer, competition_score, damerau_levenshtein, damerau_score, levenshtein, score_report,
                           sequence_scores_dl)


def test_distances():
    assert levenshtein("ab", "ba") == 2 and damerau_levenshtein("ab", "ba") == 1
    assert damerau_levenshtein("ca", "abc") == 2, "unrestricted DL (optimal string alignment gives 3)"
    assert levenshtein("kitten", "sitting") == 3 and levenshtein("", "abc") == 3


def test_corpus_scores_golden():
    refs, preds = ["abc", "hello"], ["abd", "hlelo"]
    # Lev: 1 + 2 = 3 ; DL: 1 + 1 = 2 ; N = 8
    assert competition_score(refs, preds) == pytest.approx(5 / 8)
    assert damerau_score(refs, preds) == pytest.approx(6 / 8)
    assert cer(refs, preds) == pytest.approx((1 / 3 + 2 / 5) / 2)
    assert cer(refs, preds) != pytest.approx(1 - competition_score(refs, preds)), "mean of ratios, not ratio of sums"


def test_negative_corpus_score():
    assert competition_score(["ab"], ["xyzw"]) == pytest.approx(-1.0)  # (2 − 4) / 2
    assert competition_score(["ab", "cd"], ["ab", "wxyzuv"]) == pytest.approx((4 - 6) / 4)
    assert competition_score(["abc"], ["abc"]) == 1.0


def test_sequence_scores_dl():
    s = sequence_scores_dl(["abcd", "ab", "xyz"], ["abdc", "qwerty", ""])
    assert s.tolist() == pytest.approx([(4 - 1) / 4, (2 - 6) / 2, 0.0])


def test_report():
    refs, preds, pp = ["abc", "hello"], ["abd", "hlelo"], ["abc", "hlelo"]
    r = score_report(refs, preds, pp)
    assert set(r) == {"score", "cer", "score_dl", "score_pp"}
    assert r["score"] == pytest.approx(5 / 8) and r["score_pp"] == pytest.approx(6 / 8)
    assert r["score_dl"] == pytest.approx(6 / 8) and r["cer"] == pytest.approx(11 / 30)
    assert set(score_report(refs, preds)) == {"score", "cer", "score_dl"}


def test_errors():
    with pytest.raises(ValueError):
        competition_score(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        competition_score([""], [""])
    assert isinstance(cer(["a"], ["b"]), float) and np.isclose(cer(["a"], ["b"]), 1.0)
