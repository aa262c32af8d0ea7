"""The vocabulary: the competition's 59 characters plus the model's four special token ids.

Ids 0-58 are the official ``character_to_prediction_index.json`` (shipped in ``aslfs/resources``); the model adds
pad 59, start 60, end 61 and the decoder-input mask token 62 (docs/reference.md §1.7).
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np


def _load_char_map() -> dict[str, int]:
    text = resources.files("aslfs").joinpath("resources/character_to_prediction_index.json").read_text()
    mapping = json.loads(text)
    if sorted(mapping.values()) != list(range(len(mapping))):
        raise ValueError("character_to_prediction_index.json: ids are not 0..N-1")
    return mapping


CHAR_TO_ID: dict[str, int] = _load_char_map()
ID_TO_CHAR: dict[int, str] = {i: c for c, i in CHAR_TO_ID.items()}
NUM_CHARS = len(CHAR_TO_ID)  # 59
PAD_ID = NUM_CHARS  # 59
START_ID = NUM_CHARS + 1  # 60
END_ID = NUM_CHARS + 2  # 61
MASK_ID = NUM_CHARS + 3  # 62
VOCAB_SIZE = NUM_CHARS + 4  # 63
MAX_PHRASE_LEN = 31  # longest competition phrase (train.csv)
MAX_TARGET_LEN = MAX_PHRASE_LEN + 2  # 33: characters (truncated to 32) + end, as the reference's max_phrase
DUMMY_PHRASE = "2 a-e -aroe"  # the competition-wide fallback string (docs/reference.md §6.2)
VALID_CHARS = frozenset(CHAR_TO_ID)

assert (PAD_ID, START_ID, END_ID, MASK_ID, VOCAB_SIZE) == (59, 60, 61, 62, 63)


def invalid_chars(phrase: str) -> list[str]:
    """Characters of ``phrase`` outside the vocabulary, in order of first appearance."""
    return list(dict.fromkeys(c for c in phrase if c not in CHAR_TO_ID))


def encode(phrase: str) -> list[int]:
    """Character ids of ``phrase``; raises ``ValueError`` naming the first out-of-vocabulary character."""
    bad = invalid_chars(phrase)
    if bad:
        raise ValueError(f"phrase {phrase!r} has characters outside the vocabulary: {''.join(bad)!r}")
    return [CHAR_TO_ID[c] for c in phrase]


def decode(ids) -> str:
    """Text of a sequence of ids; ids outside 0-58 (pad, start, end, mask) read as nothing, as the Kaggle harness does."""
    return "".join(ID_TO_CHAR.get(int(i), "") for i in ids)


def decode_until_end(ids) -> str:
    """Text of a generated id sequence up to (not including) the first end token."""
    out = []
    for i in ids:
        i = int(i)
        if i == END_ID:
            break
        out.append(ID_TO_CHAR.get(i, ""))
    return "".join(out)


def target_ids(phrase: str, length: int = MAX_TARGET_LEN) -> np.ndarray:
    """Training target of the reference: characters (truncated to ``length - 1``) + end, right-padded with pad."""
    ids = encode(phrase)[: length - 1] + [END_ID]
    out = np.full(length, PAD_ID, dtype=np.int32)
    out[: len(ids)] = ids
    return out
