"""``aslfs import-checkpoint CKPT --preset kaggle-1st-round1|kaggle-1st-round2 --out MODEL.keras``.

Imports a checkpoint trained with the 1st-place reference code (``.pth``, ``.safetensors`` or ``.npz`` state dict)
into an aslfs ``.keras`` model (``aslfs.interop.reference_checkpoint``).
"""

from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("checkpoint", help="reference state dict: .pth ({'model': state_dict}), .safetensors or .npz")
    parser.add_argument("--preset", required=True, choices=["kaggle-1st-round1", "kaggle-1st-round2"],
                        help="the reference config the checkpoint was trained with (cfg_1 or cfg_2)")
    parser.add_argument("--no-backward-decoder", action="store_true",
                        help="round 2: the checkpoint has no backward decoder (decoder2.*)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a ModelConfig size field (e.g. --set num_layers=2 for a reduced model)")
    parser.add_argument("--out", required=True, help="the .keras model to write")


def run(args) -> int:
    from aslfs.commands import model_overrides
    from aslfs.interop.reference_checkpoint import import_checkpoint

    overrides = model_overrides(args.overrides)
    backward = False if args.no_backward_decoder else None
    out = import_checkpoint(args.checkpoint, args.preset, args.out, backward_decoder=backward, **overrides)
    print(f"imported {args.checkpoint} ({args.preset}) -> {out}")
    return 0
