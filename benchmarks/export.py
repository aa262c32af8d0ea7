"""Export time, peak memory and size of the TFLite ensemble, measured in a child process.

``python -m benchmarks.export --preset kaggle-1st-round2 --ensemble 2 --untrained`` runs
``aslfs.export.tflite.export_ensemble`` (untrained members, 33 forced decode steps by default) in a fresh Python
process and reports:

- ``process_seconds``: the child's whole run (imports, building the members, export, writing the files), and
  ``process_cpu_seconds``, its CPU time (user + system, all threads): on a shared machine the wall times grow with
  the load, CPU time much less;
- ``export_seconds`` (graph tracing + SavedModel, then TFLite conversion) as the library measures it, with the CPU
  time of each phase;
- ``peak_rss_gb``: the child's maximum resident set size (``getrusage(RUSAGE_CHILDREN)``);
- ``bytes``: the size of ``model.tflite`` (limit 40 MB).

Reference (docs/reference.md §7.2): 328 s and 12.5 GB on 2 cores, 39,807,804 bytes for two random round-2 seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from benchmarks._report import write_report

REFERENCE = {"seconds": 328, "peak_rss_gb": 12.5, "bytes": 39_807_804}


def child(args) -> None:
    from aslfs import env

    env.setup()
    from aslfs.config import ExportParams
    from aslfs.export.tflite import export_ensemble

    params = ExportParams(diagnostics=args.diagnostics, register_model=False)
    result = export_ensemble(args.out_dir, models=args.models, params=params, preset=args.preset,
                             ensemble=args.ensemble, untrained=args.untrained, force_steps=args.force_steps or None,
                             register=False)
    print("RESULT " + json.dumps(result.to_dict()), flush=True)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="kaggle-1st-round2")
    ap.add_argument("--ensemble", type=int, default=2)
    ap.add_argument("--untrained", action="store_true", help="freshly initialised members of --preset")
    ap.add_argument("--models", nargs="*", default=[], help="trained members instead (run folders)")
    ap.add_argument("--force-steps", type=int, default=33, help="0 = early stop")
    ap.add_argument("--diagnostics", action=argparse.BooleanOptionalAction, default=False,
                    help="also export the diagnostics signature (the pipeline's default)")
    ap.add_argument("--out-dir", default=None, help="submission folder (default: a temporary one, kept)")
    ap.add_argument("--out", default=None, help="JSON result (default: benchmarks/results/export_<preset>_x<N>.json)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return {}
    if not args.untrained and not args.models:
        ap.error("give --untrained (with --preset) or --models")
    out_dir = args.out_dir or tempfile.mkdtemp(prefix="aslfs-export-bench-")
    cmd = [sys.executable, "-m", "benchmarks.export", "--child", "--preset", args.preset, "--ensemble",
           str(args.ensemble), "--force-steps", str(args.force_steps), "--out-dir", out_dir,
           "--diagnostics" if args.diagnostics else "--no-diagnostics"]
    cmd += ["--untrained"] if args.untrained else ["--models", *args.models]
    load_before = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    process_seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kb = usage.ru_maxrss
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"export child failed with status {proc.returncode}")
    result = json.loads(lines[-1][len("RESULT "):])
    report = {
        "preset": args.preset,
        "ensemble": args.ensemble,
        "untrained": args.untrained,
        "force_steps": args.force_steps or None,
        "diagnostics": args.diagnostics,
        "process_seconds": round(process_seconds, 1),
        "process_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "export_cpu_seconds": result["info"]["cpu_seconds"],
        "export_seconds": result["seconds"],
        "saved_model_seconds": result["saved_model_seconds"],
        "convert_seconds": result["convert_seconds"],
        "peak_rss_gb": round(peak_kb / 1024**2, 2),
        "bytes": result["bytes"],
        "megabytes": result["megabytes"],
        "tflite_path": result["tflite_path"],
        "reference": REFERENCE,
    }
    out = write_report(report, args.out or f"benchmarks/results/export_{args.preset}_x{args.ensemble}.json",
                       load_before)
    print(f"{args.preset} x{args.ensemble} ({'untrained' if args.untrained else 'trained'}, diagnostics "
          f"{'on' if args.diagnostics else 'off'}): export {report['export_seconds']:.1f} s (SavedModel "
          f"{report['saved_model_seconds']:.1f} s + conversion {report['convert_seconds']:.1f} s), whole process "
          f"{report['process_seconds']:.1f} s ({report['process_cpu_seconds']:.1f} s CPU), peak RSS {report['peak_rss_gb']:.2f} GB, {report['bytes']:,} bytes "
          f"({report['megabytes']:.2f} MB); load {load_before[0]:.1f} -> {out}")
    return report


if __name__ == "__main__":
    main()
