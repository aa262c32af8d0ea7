"""``aslfs render INPUT --sequence-id ID --out FILE.gif [--sheet]``: draw one sequence (animated GIF or contact sheet);
``aslfs render INPUT --letters-sheet OUT.png``: real letter handshapes beside the synthetic holds of a generated
dataset."""

from __future__ import annotations

import json


def add_arguments(parser):
    parser.add_argument("input", help="competition-format directory")
    parser.add_argument("--sequence-id", type=int, help="the sequence to draw")
    parser.add_argument("--out", help="output file (.gif, or .png with --sheet)")
    parser.add_argument("--sheet", action="store_true", help="a contact sheet PNG instead of an animated GIF")
    parser.add_argument("--letters-sheet", metavar="OUT_PNG",
                        help="instead: real handshapes beside synthetic holds of INPUT (needs its alignment.parquet)")
    parser.add_argument("--chars", help="with --letters-sheet: only these characters")
    parser.add_argument("--width", type=int, default=384, help="image width in pixels (default 384)")
    parser.add_argument("--fps", type=float, default=15.0, help="GIF frame rate (default 15)")


def run(args) -> int:
    from aslfs.errors import ConfigError
    from aslfs.viz import render

    if args.letters_sheet:
        report = render.render_letters_sheet(args.input, args.letters_sheet, chars=args.chars)
    else:
        if args.sequence_id is None or not args.out:
            raise ConfigError("render: give --sequence-id and --out (or --letters-sheet OUT.png)")
        report = render.render_sequence(args.input, args.sequence_id, args.out, sheet=args.sheet, width=args.width,
                                        fps=args.fps)
    print(json.dumps(report))
    return 0
