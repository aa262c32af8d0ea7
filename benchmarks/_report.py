"""What every benchmark report records about the machine, and how it is written.

Every JSON under ``benchmarks/results`` carries the same ``machine`` block (CPUs, Python, platform, the load average
before and after the measurement: on a shared machine the figures mean little without it) and a date.
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path


def machine(load_before: tuple[float, float, float] | None = None) -> dict:
    """The machine block; ``load_before`` is ``os.getloadavg()`` taken before the measurement started."""
    block = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }
    if load_before is not None:
        block["loadavg_before"] = [round(x, 2) for x in load_before]
    block["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return block


def write_report(report: dict, out: str | Path, load_before: tuple[float, float, float] | None = None) -> Path:
    """Add the machine block and the date to ``report`` and write it as indented JSON to ``out``."""
    report = {**report, "machine": machine(load_before), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return out
