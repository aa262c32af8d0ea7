"""Synthetic signers: one per participant, built around the real MediaPipe Holistic reference frame.

A :class:`Signer` fixes everything that is personal: handedness, distance to the camera (body scale), where the body
sits in the image, the face's proportions, hand size, how the hand is held (3-D orientation and signing location),
speed, the style of doubled letters, how shaky the landmarks are, how often the hand is lost, and a personal variant
of every handshape (a mix of a few real samples of that character).

Geometry conventions (see ``sequence.py``): *normalised* coordinates are MediaPipe's (x, y in 0..1 of the image width
and height, y down); *height units* are isotropic (x multiplied by the image's width/height ratio). The output image is
the Holistic reference frame's 512 × 600 portrait.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from io import BytesIO

import numpy as np

from aslfs.data.synth.handshapes import character_specs

#: Width / height of the output image (the Holistic reference frame: 512 × 600 portrait).
ASPECT = 512.0 / 600.0
NOSE, CHIN, FOREHEAD, LIP_TOP_INNER = 1, 152, 10, 13
RIGHT_UPPER_LID = {159: 1.0, 158: 0.8, 160: 0.8, 157: 0.5, 161: 0.5}
LEFT_UPPER_LID = {386: 1.0, 385: 0.8, 387: 0.8, 384: 0.5, 388: 0.5}


@lru_cache(maxsize=1)
def reference_frame() -> tuple[np.ndarray, np.ndarray]:
    """The real Holistic frame shipped in ``aslfs/resources/holistic``: face (468, 3) and pose (33, 3), normalised."""
    root = resources.files("aslfs").joinpath("resources/holistic")
    face = np.load(BytesIO(root.joinpath("face.npy").read_bytes())).astype(np.float32)
    pose = np.load(BytesIO(root.joinpath("pose.npy").read_bytes())).astype(np.float32)
    return face, pose


@lru_cache(maxsize=1)
def face_weights() -> tuple[np.ndarray, np.ndarray]:
    """Per face landmark weights: how much it follows the jaw when the mouth opens, and the eyelids when blinking."""
    face, _ = reference_frame()
    x, y = face[:, 0] * ASPECT, face[:, 1]
    lip_y, chin_y = y[LIP_TOP_INNER], y[CHIN]
    width = (x.max() - x.min())
    below = np.clip((y - lip_y - 0.004) / (chin_y - lip_y), 0, 1) ** 0.5
    jaw = below * np.exp(-(((x - x[LIP_TOP_INNER]) / (0.45 * width)) ** 2))
    lids = np.zeros(len(face), np.float32)
    for k, w in {**RIGHT_UPPER_LID, **LEFT_UPPER_LID}.items():
        lids[k] = w
    return jaw.astype(np.float32), lids


@dataclass
class Signer:
    """Everything personal about one synthetic participant (see the module docstring)."""

    participant_id: int
    left_handed: bool
    body_scale: float  # size of the body in the image relative to the reference portrait (distance to camera)
    nose_xy: tuple[float, float]  # where the nose sits (normalised)
    face_stretch: tuple[float, float]  # width and height factors of the face
    shoulder_stretch: float
    hand_size: float  # palm size in image-height units
    depth_scale: float  # how deep MediaPipe makes this signer's hand (factor on the hand's z)
    orientation: tuple[float, float, float]  # yaw, pitch, roll of the signing hand (degrees)
    anchor: tuple[float, float]  # signing location: fraction across the shoulders, height above them (face heights;
    # negative: below the shoulders, in front of the chest)
    hold_mean: float  # frames a character is held on average
    transition_mean: float  # frames between two holds on average
    drift: float  # outward drift per letter within a word (palm sizes)
    wander: float  # how much the wrist moves about while signing (coarticulation, palm sizes)
    doubled: str  # "bounce" or "slide"
    jitter: float  # landmark noise factor
    dropout_factor: float  # how often this signer's hand is lost, relative to the dataset rate
    mouthing: float  # probability that a sequence is mouthed
    prototypes: dict = field(default_factory=dict, repr=False)  # char -> (21, 3) personal handshape

    def handshape(self, char: str, rng: np.random.Generator) -> np.ndarray:
        """One instance of ``char``'s handshape: the personal variant, nudged towards a random real sample."""
        proto = self.prototypes[char]
        pool = character_specs()[char].shapes
        other = pool[rng.integers(len(pool))]
        w = rng.uniform(0.0, 0.3)
        shape = (1 - w) * proto + w * other
        shape = shape + rng.normal(0.0, 0.015, shape.shape).astype(np.float32)
        shape[0] = 0.0
        return shape.astype(np.float32)


def make_signer(participant_id: int, rng: np.random.Generator, left_handed: bool) -> Signer:
    """Draw one signer."""
    specs = character_specs()
    prototypes = {}
    for char, spec in specs.items():
        k = len(spec.shapes)
        idx = rng.choice(k, size=3, replace=False)
        w = rng.dirichlet(np.ones(3) * 2.0).astype(np.float32)
        prototypes[char] = np.tensordot(w, spec.shapes[idx], axes=1).astype(np.float32)
    face, _ = reference_frame()
    face_height = float(face[CHIN, 1] - face[FOREHEAD, 1])
    body_scale = float(rng.uniform(0.72, 1.1))  # near the camera (real recordings: phones held at arm's length)
    hand_size = float(face_height * body_scale * 0.44 * np.exp(rng.normal(0.0, 0.09)))
    return Signer(
        participant_id=int(participant_id),
        left_handed=bool(left_handed),
        body_scale=body_scale,
        nose_xy=(float(rng.normal(0.5, 0.035)), float(rng.uniform(0.22, 0.36))),
        face_stretch=(float(np.exp(rng.normal(0, 0.04))), float(np.exp(rng.normal(0, 0.04)))),
        shoulder_stretch=float(np.exp(rng.normal(0, 0.06))),
        hand_size=hand_size,
        depth_scale=float(np.exp(rng.normal(0.3, 0.25))),
        orientation=(float(np.clip(rng.normal(0, 12), -25, 25)), float(np.clip(rng.normal(0, 9), -20, 20)),
                     float(np.clip(rng.normal(6, 8), -15, 25))),
        anchor=(float(rng.uniform(0.12, 0.36)), float(rng.uniform(-0.85, -0.3))),
        hold_mean=float(rng.uniform(3.0, 6.0)),
        transition_mean=float(rng.uniform(1.8, 3.4)),
        drift=float(rng.uniform(0.03, 0.15)),
        wander=float(rng.uniform(0.12, 0.3)),
        doubled="bounce" if rng.random() < 0.5 else "slide",
        jitter=float(rng.uniform(0.7, 1.3)),
        dropout_factor=float(np.exp(rng.normal(-0.125, 0.5))),
        mouthing=float(rng.uniform(0.0, 0.8)),
        prototypes=prototypes,
    )
