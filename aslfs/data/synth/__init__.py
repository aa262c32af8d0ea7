"""The embedded dataset generator: synthetic fingerspelling in the exact competition format.

:func:`generate` (``aslfs synth OUT_DIR``, DVC stage ``synth``) writes ``train.csv``, ``supplemental_metadata.csv``
(``path,file_id,sequence_id,participant_id,phrase``), ``train_landmarks/<file_id>.parquet`` and
``supplemental_landmarks/<file_id>.parquet`` (index ``sequence_id``, ``frame`` int16, the 1,629 float32 columns of
:data:`aslfs.landmarks.ALL_COLUMNS`, NaN where a hand is not detected), plus ``alignment.parquet`` (``sequence_id,
frame, char``: the character whose handshape the frame holds; '' in transitions and at rest; ' ' during the pause of a
space — so the runs of non-empty chars, in order, spell the phrase exactly, doubled letters included, because two
holds are always separated by at least one transition frame).

How each realism requirement is met (modules of this package):

- **Real letter handshapes** (``handshapes.py``): letters are real MediaPipe Hands landmarks of the ASL letters
  (``aslfs/resources/asl_letters.npz``: 40 samples per letter, float16, wrist origin, palm-size units, made by
  ``scripts/build_letter_resource.py`` from the borisgraudt/asl-ai data, MIT/CC0, see ``resources/NOTICE.md``).
  Each signer has a personal variant of every character (a mix of 3 real samples); each occurrence is nudged towards
  another real sample and jittered.
- **Per-signer variation** (``signer.py``): body scale 0.72–1.1 of the reference portrait (a near camera, as in the
  real recordings), position of the body, face proportions (±4 %), shoulder width, hand size (±9 %), hand depth scale,
  3-D orientation of the signing hand (yaw ±25°, pitch ±20°, roll −15…25°), signing location (low: in front of the
  chest, 0.3–0.85 face heights below the shoulders, so the wrist is in the lower quarter of the image), speed (mean
  hold 3–6 frames, transitions 1.8–3.4 frames, both divided by ``speed``), how much the wrist wanders between letters
  (coarticulation) and drifts outward along a word, doubled-letter style, jitter level, dropout propensity, mouthing. Left-handed signers (``left_handed_fraction``) are mirrored as a
  whole (``sequence.py``): the dominant hand is then a left hand in the ``left_hand`` columns, its arm the other pose
  side, every face and pose landmark swapped with its mirror partner (``aslfs.landmarks.MIRROR_543``).
- **Digits and other characters** (``handshapes.py``, ``motion.py``): ASL number handshapes derived from the real
  letters (1 = S fist + D's index, 2 = V, 3 = V + L's thumb, 4/5 = B fanned out, 6 = W, 7/8 = F with fingers swapped,
  9 = F, 0 = O; 1–5 palm in via a forearm twist, 0 and 6–9 with a small twist); every symbol a distinct (handshape,
  movement) pair (e.g. ``.`` D + tap, ``-`` D + horizontal stroke, ``/`` D + slash, ``@`` D + circle); J and Z move
  (J: down, hooking towards the thumb while the palm turns in; Z: a Z drawn with the index).
- **Continuous signing** (``sequence.py``): holds of 1–10 frames (3–12 for moving characters) separated by eased
  transitions of 1–6 frames (durations vary by signer, recording and letter; ``speed`` divides them all) in which the handshape is blended bone by bone and the palm turns smoothly; a rest pose
  before and after; doubled letters with a bounce (dip between the two holds) or a slide (second hold half a palm
  further out); spaces are pauses (4–10 frames) with the hand relaxed and lowered a little. Sequence lengths (demo):
  mean about 110 frames, about 6 per character, and ``fast_fraction`` hurried, clipped recordings (holds of 1–2 frames, no
  rest) give the real corpus's short tail.
- **Detection** (``sequence.py``): the non-dominant hand is NaN except a short glimpse of it resting low in about
  one sequence in five; a hand whose middle knuckle is outside the image is not detected (the rest pose before and
  after the phrase is below the image's bottom edge); the dominant hand is also lost in bursts (geometric lengths,
  mean about 6 frames, up to 40, three times likelier to start in a transition) for ``hand_dropout`` of the frames
  on average, varying widely per signer and per recording (up to 90 %: some recordings keep only a few hand frames,
  as real ones do); Gaussian jitter on every landmark (hands ~2 % of a palm, face ~0.4 px, pose ~1.3 px). The
  calibration against real recordings: ``aslfs synth-stats`` (:mod:`aslfs.data.hand_stats`), README "The embedded
  dataset".
- **Face and pose** (``signer.py``, ``sequence.py``): the real MediaPipe Holistic frame of ``aslfs/resources/holistic``
  (468 face, 33 pose landmarks of a real person), scaled and placed per signer; the body sways slowly, the head turns
  a little (±3°), the mouth opens and closes in mouthed sequences, the eyes blink; the dominant arm's elbow, wrist,
  pinky, index and thumb pose landmarks follow the hand.
- **Phrases** (``phrases.py``): train = addresses, phone numbers, URLs / e-mail addresses; supplemental = sentences
  from a pool of about n/5 distinct ones (each signed by several participants); ≤ 31 characters, within the vocabulary.
  ``participants`` signers (at most n/3 so each has several sequences) with random integer ids, spread over both
  sets; unique random int64 sequence ids and file ids; ``sequences_per_file`` sequences per parquet file.
- **Determinism and speed** (``dataset.py``): every random draw comes from ``numpy`` generators seeded by
  ``(seed, purpose, index)``, so the output depends only on the parameters (not on ``workers``). Coordinates are
  rounded to a storage precision (2^-13, and 2^-10 ≈ half a pixel for the face-mesh points the model never reads) and
  written with byte-stream-split + zstd: about 0.22 MB per sequence. Files are written one at a time (memory bounded
  by one file), optionally by several worker processes.
"""

from aslfs.data.synth.dataset import ALIGNMENT_FILE, generate, plan_dataset

__all__ = ["ALIGNMENT_FILE", "generate", "plan_dataset"]
