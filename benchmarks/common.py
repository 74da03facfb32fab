"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import json
from pathlib import Path


def training_rate(run_dir: Path, after_step: int = 0) -> float:
    """Env steps/s of a toolkit run's training loop after ``after_step``, from the
    ``perf/sps`` lines of its metrics.jsonl (each covers the steps since the previous line),
    so start-up and the final evaluation are not counted."""
    records = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    seconds, previous = 0.0, after_step
    for record in records:
        if record.get("perf/sps") and record["step"] > after_step:
            seconds += (record["step"] - previous) / record["perf/sps"]
            previous = record["step"]
    return (previous - after_step) / seconds
