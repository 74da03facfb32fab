"""Metric sinks (metrics.jsonl, the console progress bar, W&B) and ``RunLogger``, which
aggregates what the loops report and fans it out to them.

metrics.jsonl holds one JSON object per line: ``step`` plus namespaced keys
(``train/episode_return``, ``eval/mean_return``, ``perf/sps``, ``loss/...``).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from toolkit.interfaces import Logger


class JsonlLogger:
    """Appends to ``metrics.jsonl`` in the run directory (a resumed run keeps appending)."""

    def __init__(self, run_dir: Path, config: dict[str, Any] | None = None) -> None:
        self.file = open(Path(run_dir) / "metrics.jsonl", "a", buffering=1 << 16)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        record = {"step": step, **{k: _json_number(v) for k, v in metrics.items()}}
        self.file.write(json.dumps(record) + "\n")

    def log_images(self, step: int, images: dict[str, str]) -> None:
        self.file.write(json.dumps({"step": step, **{f"{k}_path": v for k, v in images.items()}}) + "\n")

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _json_number(value: Any) -> Any:
    value = float(value) if not isinstance(value, (int, str)) else value
    return None if isinstance(value, float) and not math.isfinite(value) else value


class ConsoleLogger:
    """A rich progress bar with live steps/s, mean episode return and the latest losses."""

    def __init__(self, run_dir: Path, config: dict[str, Any] | None = None, *, total: int = 0,
                 start: int = 0, enabled: bool = True) -> None:
        self.progress = None
        self.latest: dict[str, float] = {}
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=Console(file=sys.stderr), refresh_per_second=4, transient=False,
        )
        self.task = self.progress.add_task("train", total=total, completed=start, status="")
        self.progress.start()

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.latest.update(metrics)

    def log_images(self, step: int, images: dict[str, str]) -> None:
        """The console shows no images."""

    def update(self, step: int, status: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, status=status)

    def print(self, message: str) -> None:
        if self.progress is not None:
            self.progress.console.print(message, highlight=False, markup=False)
        else:
            print(message, file=sys.stderr)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


class WandbLogger:
    """Weights & Biases: online when logged in, otherwise an offline run inside the run
    directory that ``wandb sync`` uploads later. The run id is kept in the run directory,
    so a resumed training run continues the same W&B run."""

    def __init__(self, run_dir: Path, config: dict[str, Any]) -> None:
        import wandb

        run_dir = Path(run_dir)
        id_file = run_dir / "wandb_id.txt"
        run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:8]
        id_file.write_text(run_id)
        mode = os.environ.get("WANDB_MODE") or ("online" if _wandb_logged_in() else "offline")
        run_config = config.get("run", {})
        self.run = wandb.init(
            project=run_config.get("wandb_project") or "toolkit",
            entity=run_config.get("wandb_entity") or None,
            name=run_dir.name, id=run_id, resume="allow", dir=str(run_dir), config=config,
            mode=mode, settings=wandb.Settings(silent=True, console="off"),
        )
        self.wandb = wandb

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log(dict(metrics), step=step)

    def log_images(self, step: int, images: dict[str, str]) -> None:
        self.run.log({k: self.wandb.Image(path) for k, path in images.items()}, step=step)

    def close(self) -> None:
        self.run.finish()


def _wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path.home() / ".netrc"
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")


class RunLogger:
    """The loops' ``Reporter``: keeps running statistics and writes them to every logger.

    Losses are averaged between writes, which happen every ``log_every`` steps; episodes are
    written as they end; the progress bar is refreshed a few times per second.
    """

    def __init__(self, loggers: list[Logger], console: ConsoleLogger, *, log_every: int, start: int) -> None:
        self.loggers = loggers
        self.console = console
        self.log_every = max(1, log_every)
        self.returns: deque[float] = deque(maxlen=20)
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.next_log = (start // self.log_every + 1) * self.log_every
        self.last_time, self.last_step = time.monotonic(), start
        self.episodes = 0
        self.sps = 0.0

    def write(self, step: int, metrics: dict[str, float]) -> None:
        for logger in self.loggers:
            logger.log(step, metrics)

    def episode(self, step: int, episode_return: float, length: int) -> None:
        self.episodes += 1
        self.returns.append(episode_return)
        self.write(step, {"train/episode_return": episode_return, "train/episode_length": length})

    def metrics(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
            self.counts[key] = self.counts.get(key, 0) + 1

    def progress(self, step: int) -> None:
        if step >= self.next_log:
            self.flush_metrics(step)
        parts = [f"{self.sps:,.0f} steps/s"] if self.sps else []
        if self.returns:
            parts.append(f"return {sum(self.returns) / len(self.returns):.2f}")
        for key in list(self.sums)[:2]:
            parts.append(f"{key.split('/')[-1]} {self.sums[key] / self.counts[key]:.3g}")
        self.console.update(step, "  ".join(parts))

    def flush_metrics(self, step: int) -> None:
        if step == self.last_step and not self.sums:
            return
        now = time.monotonic()
        if step > self.last_step and now > self.last_time:
            self.sps = (step - self.last_step) / (now - self.last_time)
        averaged = {k: self.sums[k] / self.counts[k] for k in self.sums}
        self.write(step, {**averaged, "perf/sps": self.sps})
        self.sums.clear()
        self.counts.clear()
        self.last_time, self.last_step = now, step
        self.next_log = (step // self.log_every + 1) * self.log_every
        for logger in self.loggers:
            if hasattr(logger, "flush"):
                logger.flush()

    def images(self, step: int, images: dict[str, str]) -> None:
        for logger in self.loggers:
            logger.log_images(step, images)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()
        self.console.close()
