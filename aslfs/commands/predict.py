"""``aslfs predict MODEL INPUT --out OUT.csv``: phrases for a competition directory or one parquet file.

MODEL is a submission folder, a ``.tflite`` file or an MLflow model URI (``models:/asl-fingerspelling@champion``).
The predictions are exactly what the TFLite file returns to the Kaggle harness.
"""

from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("model", help="submission folder, .tflite file or MLflow model URI")
    parser.add_argument("input", help="competition-format directory (its csv files) or one landmark .parquet file")
    parser.add_argument("--out", required=True, help="output csv (sequence_id,phrase[,label,score])")
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads (default 2)")


def run(args) -> int:
    from aslfs.predict import predict

    result = predict(args.model, args.input, args.out, threads=args.threads)
    line = f"predicted {result.sequences} sequences in {result.seconds:.1f} s -> {result.out_csv}"
    if result.score is not None:
        line += f"; competition score {result.score:.4f}"
    print(line)
    return 0
