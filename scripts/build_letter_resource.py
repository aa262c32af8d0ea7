"""Derive ``aslfs/resources/asl_letters.npz`` from the real ASL letter hand landmarks.

Source: ``/work/shared/data/asl_alphabet_hand_landmarks`` (``landmarks.npy`` float32 (10508, 21, 3) + ``labels.csv``),
real MediaPipe Hands landmarks of the static ASL letters a-z from ``borisgraudt/asl-ai`` (``data/raw_gestures``,
MIT licence; the author also publishes the data set as CC0 1.0). See ``aslfs/resources/NOTICE.md``.

What the resource holds (a compact derivative, about 130 KB):

- ``shapes``: float16 (26, K, 21, 3), K = 40 samples per letter, in MediaPipe hand-landmark order.
- ``letters``: the 26 letters, in row order ("abc...z").
- ``aspect``: the width/height ratio assumed for the source images (16/9, see below).

Each sample is normalised as follows:

1. Isotropic units. MediaPipe gives x as a fraction of the image width and y of the image height; z uses roughly the
   scale of x. The source images are landscape: a flat "b" hand has a median knuckle breadth / palm length of 0.35 in
   raw (x, y), while a human palm is about 0.65 as broad as it is long, which puts width/height near 16/9 (a 16:9
   webcam). x and z are multiplied by 16/9 so that all three axes are in image-height units.
2. Wrist origin: the wrist (landmark 0) is subtracted.
3. Hand-size units: divided by the sample's palm size, the mean 3-D length of the four near-rigid palm segments
   wrist-index MCP, wrist-middle MCP, wrist-pinky MCP and index MCP-pinky MCP.
4. Right hand, unmirrored camera. The source hands have the thumb on the image-left of the pinky with the palm towards
   the camera, i.e. a right hand seen through a mirrored (selfie) webcam. x is negated so the shapes are the signer's
   right hand in an ordinary, unmirrored image (the convention of the Holistic reference frame and of the generator).

Selection: per letter, the 10% of samples farthest from the letter's median shape are dropped (tracking glitches),
then K samples are drawn at random (seed 0) from the rest. Orientation is kept as recorded (g, h point sideways,
p, q point down); the generator adds its own per-signer rotations.

Usage: ``python scripts/build_letter_resource.py [SOURCE_DIR] [OUT_NPZ]``.
"""

from __future__ import annotations

import string
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SOURCE = Path("/work/shared/data/asl_alphabet_hand_landmarks")
OUT = Path(__file__).resolve().parents[1] / "aslfs" / "resources" / "asl_letters.npz"
SAMPLES_PER_LETTER = 40
ASPECT = 16.0 / 9.0
PALM_SEGMENTS = ((0, 5), (0, 9), (0, 17), (5, 17))


def normalise(hands: np.ndarray, aspect: float = ASPECT) -> np.ndarray:
    """(N, 21, 3) raw MediaPipe hand landmarks → wrist-origin, palm-size units, right hand in an unmirrored image."""
    h = np.asarray(hands, np.float64).copy()
    h[..., 0] *= aspect
    h[..., 2] *= aspect
    h -= h[:, :1]
    size = np.mean([np.linalg.norm(h[:, i] - h[:, j], axis=-1) for i, j in PALM_SEGMENTS], axis=0)
    h /= size[:, None, None]
    h[..., 0] *= -1.0
    return h


def build(source: Path = SOURCE, out: Path = OUT, k: int = SAMPLES_PER_LETTER, seed: int = 0) -> dict:
    raw = np.load(source / "landmarks.npy")
    labels = pd.read_csv(source / "labels.csv")["label"].to_numpy()
    if len(raw) != len(labels):
        raise SystemExit(f"{source}: {len(raw)} landmark rows but {len(labels)} labels")
    rng = np.random.default_rng(seed)
    letters = string.ascii_lowercase
    shapes = np.zeros((len(letters), k, 21, 3), np.float16)
    for li, letter in enumerate(letters):
        norm = normalise(raw[labels == letter])
        median = np.median(norm, axis=0)
        dist = np.sqrt(((norm - median) ** 2).sum(-1)).mean(-1)
        keep = np.argsort(dist)[: int(np.ceil(0.9 * len(norm)))]
        pick = np.sort(rng.choice(keep, size=k, replace=False))
        shapes[li] = norm[pick].astype(np.float16)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, shapes=shapes, letters=np.array(letters), aspect=np.float32(ASPECT))
    return {"out": str(out), "bytes": out.stat().st_size, "shape": shapes.shape}


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else OUT
    print(build(src, dst))
