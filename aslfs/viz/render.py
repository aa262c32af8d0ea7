"""Drawing landmark data with Pillow: one sequence as an animated GIF or a contact sheet, and the letters sheet.

- :func:`render_sequence` draws one sequence of a competition-format directory: both hands with their bones (fingers
  coloured thumb red, index orange, middle yellow, ring green, pinky blue; a hand MediaPipe did not find is simply not
  drawn and the legend says "missing"), the face (all mesh points faint, the 76 the model reads brighter), the pose
  arms and shoulders, the phrase, and — when the directory has ``alignment.parquet`` (the synthetic generator writes
  it) — the character held at that frame, highlighted in the phrase.
- :func:`render_letters_sheet` puts, for every character, real letter handshapes (the packaged real samples, or the
  real-derived shapes for digits and symbols) beside synthetic holds taken from a generated dataset: the way to judge
  the generator's realism by eye.

Coordinates are MediaPipe-normalised (x, y in 0..1 of the image width and height, y down); the canvas keeps the
generator's 512 × 600 portrait aspect by default. The sequence is read with :func:`aslfs.data.reader.load_sequence`
(all 1,629 columns of one ``sequence_id``, row groups pruned by their statistics).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from aslfs.atomic import atomic_path
from aslfs.errors import DataError
from aslfs.landmarks import ALL_COLUMNS, ALL_LANDMARKS, SELECTED_COLUMNS

FACE0, LHAND0, POSE0, RHAND0 = 0, 468, 489, 522
HAND_BONES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
              (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20))
FINGER_COLOURS = ((230, 70, 70), (245, 150, 40), (235, 220, 60), (90, 200, 90), (80, 150, 240))
POSE_BONES = ((11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18),
              (16, 20), (16, 22), (18, 20), (11, 23), (12, 24), (23, 24))
BACKGROUND = (24, 26, 32)
DEFAULT_ASPECT = 512.0 / 600.0
_SELECTED_FACE = sorted({ALL_LANDMARKS.index(c[2:]) for c in SELECTED_COLUMNS if "_face_" in c})


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _finger_colour(bone: tuple[int, int]) -> tuple[int, int, int]:
    child = bone[1]
    if bone in ((5, 9), (9, 13), (13, 17), (0, 17)):
        return (200, 200, 200)
    return FINGER_COLOURS[(child - 1) // 4]


def draw_hand(draw: ImageDraw.ImageDraw, pts: np.ndarray, width: int = 2, radius: float = 2.0,
              label: str | None = None, font=None) -> None:
    """Draw one hand given (21, 2) pixel coordinates (bones coloured per finger)."""
    for a, b in HAND_BONES:
        draw.line([tuple(pts[a]), tuple(pts[b])], fill=_finger_colour((a, b)), width=width)
    for i, (x, y) in enumerate(pts):
        col = (255, 255, 255) if i == 0 else FINGER_COLOURS[(i - 1) // 4]
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=col)
    if label:
        draw.text((pts[0][0] + 4, pts[0][1] + 2), label, fill=(255, 255, 255), font=font)


def _hold_positions(chars: np.ndarray, phrase: str) -> np.ndarray:
    """Index into ``phrase`` of the character held at each frame (-1 where none), from the alignment's hold runs."""
    pos = np.full(len(chars), -1, np.int64)
    k, prev = -1, ""
    for t, c in enumerate(chars):
        if c and c != prev:
            k += 1
        if c:
            pos[t] = k if k < len(phrase) else -1
        prev = c
    return pos


def read_alignment(data_dir: str | Path, sequence_id: int) -> np.ndarray | None:
    """The held character of every frame of one sequence from ``alignment.parquet`` (None when there is no file)."""
    from aslfs.data.store import read_table

    path = Path(data_dir) / "alignment.parquet"
    if not path.is_file():
        return None
    table = read_table(path, columns=["frame", "char"], filters=[("sequence_id", "=", int(sequence_id))])
    if table.empty:
        return None
    chars = table["char"].to_numpy(dtype=object)
    return chars[np.argsort(table["frame"].to_numpy(), kind="stable")]


class _Canvas:
    def __init__(self, width: int, height: int, header: int):
        self.w, self.h, self.header = width, height, header

    def px(self, xy: np.ndarray) -> np.ndarray:
        return np.stack([xy[..., 0] * self.w, xy[..., 1] * self.h + self.header], -1)


def draw_frame(lm: np.ndarray, width: int, height: int, phrase: str = "", char: str | None = None,
               char_pos: int = -1, index: int = 0, total: int = 0, small: bool = False) -> Image.Image:
    """One frame (543, 3) as an image: body, face, hands, and a header with the phrase and the held character."""
    header = 0 if small else 46
    img = Image.new("RGB", (width, height + header), BACKGROUND)
    d = ImageDraw.Draw(img)
    cv = _Canvas(width, height, header)
    font = _font(10 if small else 13)
    big = _font(18 if small else 30)
    face = lm[FACE0:FACE0 + 468]
    ok = ~np.isnan(face[:, 0])
    for i in np.flatnonzero(ok):
        x, y = cv.px(face[i, :2])
        d.point((x, y), fill=(85, 90, 105))
    for i in _SELECTED_FACE:
        if ok[i]:
            x, y = cv.px(face[i, :2])
            d.ellipse([x - 1, y - 1, x + 1, y + 1], fill=(190, 190, 215))
    pose = lm[POSE0:POSE0 + 33]
    for a, b in POSE_BONES:
        if not (np.isnan(pose[a, 0]) or np.isnan(pose[b, 0])):
            d.line([tuple(cv.px(pose[a, :2])), tuple(cv.px(pose[b, :2]))], fill=(120, 130, 150), width=2)
    status = []
    for name, start, tag in (("left hand", LHAND0, "L"), ("right hand", RHAND0, "R")):
        hand = lm[start:start + 21]
        if np.isnan(hand[:, 0]).any():
            status.append((f"{name}: missing", (230, 90, 90)))
        else:
            status.append((f"{name}: found", (120, 210, 120)))
            draw_hand(d, cv.px(hand[:, :2]), width=1 if small else 2, radius=1.2 if small else 2.2,
                      label=None if small else tag, font=font)
    if small:
        d.text((3, 2), f"{index}", fill=(200, 200, 200), font=font)
        if char:
            d.text((width - 26, 0), "sp" if char == " " else char, fill=(255, 230, 90), font=big)
        for k, (text, col) in enumerate(status):
            if "missing" in text:
                d.text((3, height - 12 - 11 * k), text.split(":")[0][0].upper() + " missing", fill=col, font=font)
        return img
    # header: phrase with the held character highlighted, frame counter, held character, hand status
    x = 6
    for i, c in enumerate(phrase):
        col = (255, 230, 90) if i == char_pos else (220, 220, 220)
        if i == char_pos:
            w = d.textlength(c, font=font)
            d.rectangle([x - 1, 4, x + w + 1, 21], fill=(90, 70, 20))
        d.text((x, 5), c, fill=col, font=font)
        x += d.textlength(c, font=font)
    d.text((6, 26), f"frame {index}/{total}", fill=(170, 170, 170), font=font)
    for k, (text, col) in enumerate(status):
        d.text((100 + 125 * k, 26), text, fill=col, font=font)
    if char is not None:
        shown = "sp" if char == " " else (char or "-")
        d.text((width - 44, 6), shown, fill=(255, 230, 90) if char else (120, 120, 120), font=big)
    return img


def render_sequence(data_dir: str | Path, sequence_id: int, out_path: str | Path, sheet: bool = False,
                    width: int = 384, aspect: float = DEFAULT_ASPECT, fps: float = 15.0, max_tiles: int = 48,
                    columns: int = 8) -> dict:
    """Draw one sequence as an animated GIF (one image per frame) or, with ``sheet``, a contact-sheet PNG.

    Args:
        data_dir: competition-format directory (``alignment.parquet`` is used when present).
        sequence_id: the sequence to draw.
        out_path: destination ``.gif`` (or ``.png`` with ``sheet``).
        sheet: write a contact sheet of at most ``max_tiles`` evenly spaced frames instead of an animation.
        width: image width in pixels (height follows ``aspect`` = width / height of the recorded image).
        fps: GIF frame rate.
        max_tiles, columns: contact-sheet layout.
    Returns:
        ``{"out": path, "frames": T, "images": number of GIF frames or tiles, "phrase": ...}``.
    """
    from aslfs.data.reader import load_sequence

    meta, frames = load_sequence(data_dir, int(sequence_id), columns=ALL_COLUMNS)
    t = len(frames)
    lm = frames.reshape(t, 3, 543).transpose(0, 2, 1)
    phrase = str(meta.get("phrase", ""))
    chars = read_alignment(data_dir, sequence_id)
    if chars is not None and len(chars) != t:
        chars = None
    pos = _hold_positions(chars, phrase) if chars is not None else np.full(t, -1)
    height = int(round(width / aspect))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if not sheet:
        images = [draw_frame(lm[i], width, height, phrase, None if chars is None else chars[i], int(pos[i]), i, t)
                  for i in range(t)]
        images = [im.convert("P", palette=Image.Palette.ADAPTIVE, colors=64) for im in images]
        with atomic_path(out_path) as tmp:
            images[0].save(tmp, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0,
                           optimize=False, disposal=1)
        return {"out": str(out_path), "frames": t, "images": len(images), "phrase": phrase}
    picks = np.unique(np.linspace(0, t - 1, min(t, max_tiles)).round().astype(int))
    tw = width // 2
    th = int(round(tw / aspect))
    tiles = [draw_frame(lm[i], tw, th, char=None if chars is None else chars[i], index=int(i), small=True)
             for i in picks]
    rows = int(np.ceil(len(tiles) / columns))
    head = 40
    sheet_img = Image.new("RGB", (columns * tw, rows * th + head), (10, 10, 14))
    d = ImageDraw.Draw(sheet_img)
    d.text((6, 4), f"sequence {sequence_id}: \"{phrase}\"", fill=(235, 235, 235), font=_font(16))
    d.text((6, 24), f"{t} frames, every {max(1, t // len(picks))}th shown; yellow = character held (alignment)",
           fill=(160, 160, 160), font=_font(12))
    for k, tile in enumerate(tiles):
        sheet_img.paste(tile, ((k % columns) * tw, head + (k // columns) * th))
    with atomic_path(out_path) as tmp:
        sheet_img.save(tmp)
    return {"out": str(out_path), "frames": t, "images": len(tiles), "phrase": phrase}


def _hand_tile(hand: np.ndarray, size: int, caption: str, frame_colour=(60, 60, 70)) -> Image.Image:
    """A (21, 3) hand in isotropic units (x right, y down), centred and scaled into a square tile."""
    img = Image.new("RGB", (size, size), (20, 22, 28))
    d = ImageDraw.Draw(img)
    xy = hand[:, :2] - hand[:, :2].mean(0)
    extent = max(np.abs(xy).max(), 1e-6)
    pts = xy / extent * (size * 0.38) + np.array([size / 2, size / 2 + 4])
    draw_hand(d, pts, width=2, radius=2.0)
    d.rectangle([0, 0, size - 1, size - 1], outline=frame_colour)
    d.text((3, 2), caption, fill=(210, 210, 210), font=_font(10))
    return img


def synthetic_holds(data_dir: str | Path, per_char: int = 3, max_files: int = 4, aspect: float = DEFAULT_ASPECT,
                    seed: int = 0) -> dict[str, list[tuple[np.ndarray, str]]]:
    """Dominant-hand shapes at the middle of holds, per character, from a generated dataset with ``alignment.parquet``.

    Returns:
        char -> list of ``((21, 3) isotropic hand, caption)``; left hands are mirrored to right hands (caption "L").
    """
    import pyarrow.parquet as pq

    from aslfs.data.metadata import read_metadata, resolve_path

    data_dir = Path(data_dir)
    if not (data_dir / "alignment.parquet").is_file():
        raise DataError(f"{data_dir}: no alignment.parquet (render the letters sheet from a generated dataset)")
    meta = read_metadata(data_dir)
    align = pq.read_table(data_dir / "alignment.parquet").to_pandas()
    rng = np.random.default_rng(seed)
    found: dict[str, list] = {}
    for rel in list(dict.fromkeys(meta["path"]))[:max_files]:
        table = pq.read_table(resolve_path(data_dir, rel)).to_pandas()
        ids = table.index.to_numpy()
        values = table[list(ALL_COLUMNS)].to_numpy(np.float32)
        pid = dict(zip(meta.sequence_id, meta.participant_id))
        for sid in rng.permutation(np.unique(ids)):
            rows = values[ids == sid]
            chars = align[align.sequence_id == sid].sort_values("frame")["char"].to_numpy()
            runs = np.flatnonzero(np.r_[True, chars[1:] != chars[:-1]])
            for s, e in zip(runs, np.r_[runs[1:], len(chars)]):
                c = chars[s]
                if not c or c == " " or len(found.get(c, [])) >= per_char:
                    continue
                lm = rows[(s + e) // 2].reshape(3, 543).T
                for start, tag in ((RHAND0, "R"), (LHAND0, "L")):
                    hand = lm[start:start + 21].copy()
                    if not np.isnan(hand).any():
                        hand[:, 0] *= aspect
                        hand[:, 2] *= aspect
                        if tag == "L":
                            hand[:, 0] *= -1
                        found.setdefault(c, []).append((hand, f"syn {tag} p{pid.get(sid, '?')}"))
                        break
    return found


def render_letters_sheet(data_dir: str | Path, out_path: str | Path, chars: str | None = None, real_per_char: int = 2,
                         synth_per_char: int = 3, tile: int = 88, blocks_per_row: int = 3) -> dict:
    """Real letter handshapes beside synthetic holds, character by character, as one PNG.

    Args:
        data_dir: a generated dataset (with ``alignment.parquet``) to take the synthetic holds from.
        out_path: destination ``.png``.
        chars: characters to show (default: every character except space, letters first).
        real_per_char: real (or real-derived) shapes per character, from the packaged resource.
        synth_per_char: synthetic holds per character (middle frame of a hold, dominant hand).
        tile, blocks_per_row: layout.
    Returns:
        ``{"out": path, "chars": n, "synthetic_found": {char: count}}``.
    """
    from aslfs.data.synth.handshapes import character_specs

    specs = character_specs()
    if chars is None:
        chars = "".join(sorted((c for c in specs if c != " "), key=lambda c: (not c.isalpha(), not c.isdigit(), c)))
    holds = synthetic_holds(data_dir, per_char=synth_per_char)
    label_w = 56
    block_w = label_w + (real_per_char + synth_per_char) * tile + 12
    rows = int(np.ceil(len(chars) / blocks_per_row))
    head = 30
    img = Image.new("RGB", (blocks_per_row * block_w, head + rows * (tile + 6)), (8, 8, 12))
    d = ImageDraw.Draw(img)
    d.text((6, 6), "real (blue frame: packaged real samples / real-derived)  |  synthetic holds (orange frame)",
           fill=(220, 220, 220), font=_font(14))
    for k, c in enumerate(chars):
        x0 = (k % blocks_per_row) * block_w
        y0 = head + (k // blocks_per_row) * (tile + 6)
        spec = specs[c]
        d.text((x0 + 6, y0 + 4), c, fill=(255, 230, 90), font=_font(28))
        d.text((x0 + 6, y0 + 40), spec.motion if spec.motion != "hold" else "", fill=(170, 170, 170), font=_font(9))
        if spec.twist:
            d.text((x0 + 6, y0 + 52), f"twist {spec.twist:.0f}", fill=(170, 170, 170), font=_font(9))
        for j in range(real_per_char):
            shape = spec.shapes[(j * 7) % len(spec.shapes)]
            img.paste(_hand_tile(shape, tile, "real" if c.isalpha() else "derived", (70, 120, 220)),
                      (x0 + label_w + j * tile, y0))
        for j, (hand, cap) in enumerate(holds.get(c, [])[:synth_per_char]):
            img.paste(_hand_tile(hand, tile, cap, (230, 140, 40)), (x0 + label_w + (real_per_char + j) * tile, y0))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_path) as tmp:
        img.save(tmp)
    return {"out": str(out_path), "chars": len(chars), "synthetic_found": {c: len(holds.get(c, [])) for c in chars}}
