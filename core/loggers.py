"""Metric sinks (metrics.jsonl, the console progress bar, W&B) and ``RunLogger``, which
aggregates what the loops report and fans it out to them.

metrics.jsonl holds one JSON object per line: ``step`` plus namespaced keys
(``train/episode_return``, ``eval/mean_return``, ``perf/sps``, ``loss/...``). Metric lines and
evaluation lines carry ``perf/elapsed_s``, the wall-clock seconds since this process started
the run (a resumed run counts again from 0), so time-to-score can be read off a run.
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

from toolkit.interfaces import FlushingLogger, Logger


class JsonlLogger:
    """Appends to ``metrics.jsonl`` in the run directory (a resumed run keeps appending)."""

    def __init__(self, run_dir: Path, config: dict[str, Any] | None = None) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.file = open(self.path, "a", buffering=1 << 16)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        record = {"step": step, **{k: _json_number(v) for k, v in metrics.items()}}
        self._write(json.dumps(record) + "\n")

    def log_media(self, step: int, media: dict[str, str]) -> None:
        self._write(json.dumps({"step": step, **{f"{k}_path": v for k, v in media.items()}}) + "\n")

    def _write(self, line: str) -> None:
        try:
            self.file.write(line)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc

    def flush(self) -> None:
        try:
            self.file.flush()
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc

    def close(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass  # what did not fit was reported when it was written


def _json_number(value: Any) -> Any:
    value = float(value) if not isinstance(value, (int, str)) else value
    return None if isinstance(value, float) and not math.isfinite(value) else value


def read_metric_lines(run_dir: Path) -> list[str]:
    """The lines of ``metrics.jsonl``, each checked to be a JSON object with a ``step``. Only the
    last line may be broken (cut short by a kill); a broken line anywhere else, or a file that
    is not UTF-8, is a one-line error naming it: a resume must not drop data silently."""
    from toolkit.errors import ToolkitError

    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ToolkitError(f"{path} is not UTF-8 text (byte {exc.start}); it was not written by toolkit") from None
    except OSError as exc:
        raise ToolkitError(f"cannot read {path}: {exc.strerror or exc}") from None
    kept = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                raise ValueError("no integer step")
        except ValueError:
            if number == len(lines):
                break  # cut short by the kill that ended the run
            raise ToolkitError(f"{path} line {number} is not a metrics record ({line[:60]!r}); fix or remove "
                               "that line, then resume") from None
        kept.append(line)
    return kept


def truncate_metrics(run_dir: Path, last_step: int, lines: list[str] | None = None) -> None:
    """Keep the lines up to ``last_step`` (a run killed after its last checkpoint wrote more),
    so a resumed run appends exactly what an uninterrupted run would have. ``lines``: the
    already-checked lines of ``read_metric_lines``."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return
    lines = read_metric_lines(run_dir) if lines is None else lines
    kept = [line for line in lines if json.loads(line)["step"] <= last_step]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)


class ConsoleLogger:
    """A rich progress bar with live steps/s, mean episode return, the latest losses and ETA."""

    def __init__(self, run_dir: Path, config: dict[str, Any] | None = None, *, total: int = 0,
                 start: int = 0, enabled: bool = True) -> None:
        self.progress = None
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
    """Weights & Biases: online when credentials are configured, otherwise an offline run
    inside the run directory that ``wandb sync`` uploads later. The run id is kept in the
    run directory, so a resumed training run continues the same W&B run. Every call is
    guarded: a W&B failure warns once and training goes on with local logging."""

    def __init__(self, run_dir: Path, config: dict[str, Any], warn=None) -> None:
        import wandb

        self.wandb, self.run, self.warn = wandb, None, warn or (lambda message: print(message, file=sys.stderr))
        run_dir = Path(run_dir)
        id_file = run_dir / "wandb_id.txt"
        run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:8]
        id_file.write_text(run_id)
        self.mode = os.environ.get("WANDB_MODE") or ("online" if _wandb_logged_in() else "offline")
        run_config = config.get("run", {})
        tags = [t for t in run_config.get("wandb_tags", ()) if t]
        timeout = float(run_config.get("wandb_timeout", 15.0))
        init = dict(project=run_config.get("wandb_project") or "toolkit", entity=run_config.get("wandb_entity") or None,
                    group=run_config.get("wandb_group") or None, tags=tags or None, name=run_dir.name, id=run_id,
                    resume="allow", dir=str(run_dir), config=config)
        try:
            try:
                self.run = wandb.init(**init, mode=self.mode,
                                      settings=wandb.Settings(silent=True, console="off", init_timeout=timeout))
            except wandb.errors.CommError as exc:  # the server did not answer in time: log offline instead
                if self.mode == "offline":
                    raise
                self.warn(f"W&B did not answer within {timeout:g} s ({str(exc).splitlines()[0][:120]}); "
                          "logging offline instead")
                self.mode = "offline"
                wandb.teardown()  # the failed start still holds the run id
                self.run = wandb.init(**init, mode="offline", settings=wandb.Settings(silent=True, console="off"))
            # Every panel uses env steps (or updates) as its x-axis.
            self.run.define_metric("global_step")
            self.run.define_metric("*", step_metric="global_step")
        except Exception as exc:  # a bad key, quota, a broken install: keep training without W&B
            self._fail(exc)
        if self.run is not None and self.mode == "offline":
            self.warn(f"W&B is offline; upload later with: wandb sync {run_dir / 'wandb'}/offline-run-*")

    def _fail(self, exc: Exception) -> None:
        self.warn(f"W&B disabled after an error ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); "
                  "logging continues locally")
        self.run = None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if self.run is not None:
            try:
                self.run.log({**metrics, "global_step": step})
            except Exception as exc:
                self._fail(exc)

    def log_media(self, step: int, media: dict[str, str]) -> None:
        if self.run is None:
            return
        try:
            items = {key: self.wandb.Video(path, format="mp4") if path.endswith(".mp4") else self.wandb.Image(path)
                     for key, path in media.items()}
            self.run.log({**items, "global_step": step})
        except Exception as exc:
            self._fail(exc)

    def log_checkpoints(self, paths: list[Path]) -> None:
        """Upload the final and best checkpoints as one model artifact."""
        if self.run is None:
            return
        try:
            artifact = self.wandb.Artifact(f"{self.run.id}-checkpoints", type="model")
            for path in paths:
                artifact.add_file(str(path))
            self.run.log_artifact(artifact)
        except Exception as exc:
            self._fail(exc)

    def close(self) -> None:
        if self.run is not None:
            try:
                self.run.finish()
            except Exception as exc:
                self._fail(exc)


def _wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path.home() / ".netrc"
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")


class RunLogger:
    """The loops' ``Reporter``: keeps running statistics and writes them to every logger.

    Losses are averaged between writes, which happen every ``log_every`` steps (the runtime
    schedules ``flush_metrics``, so lines fall on the same steps in every run); episodes are
    written as they end; the progress bar is refreshed a few times per second. Its state
    goes into checkpoints, so a resumed run writes the lines an uninterrupted one would.
    """

    def __init__(self, loggers: list[Logger], console: ConsoleLogger, *, start: int, on_nonfinite: str = "warn") -> None:
        self.loggers = loggers
        self.console = console
        self.on_nonfinite, self.warned = on_nonfinite, set()
        self.returns: deque[float] = deque(maxlen=20)
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.episodes = 0
        self.last_time, self.last_step = time.monotonic(), start
        self.sps = 0.0  # the progress display's recent rate
        self.line_time, self.line_step = self.last_time, start  # of the last metrics line
        self.began = time.monotonic()

    def elapsed(self) -> float:
        """Wall-clock seconds since this logger (the run in this process) began."""
        return time.monotonic() - self.began

    def write(self, step: int, metrics: dict[str, float]) -> None:
        self._each("log", step, metrics)

    def _each(self, method: str, *args: Any) -> None:
        for logger in list(self.loggers):
            self._call(logger, method, *args)

    def _call(self, logger: Logger, method: str, *args: Any) -> None:
        """``logger.method(*args)``. A logger that raises is disabled with a warning and training
        goes on, except metrics.jsonl, which resuming relies on."""
        try:
            getattr(logger, method)(*args)
        except Exception as exc:
            if isinstance(logger, JsonlLogger):
                raise
            from toolkit.errors import describe_exception

            self.loggers.remove(logger)
            self.console.print(f"warning: logger {type(logger).__name__} disabled after an error in {method}(): "
                               f"{describe_exception(exc)}; training goes on without it")

    def episode(self, step: int, episode_return: float, length: int) -> None:
        if not math.isfinite(episode_return):  # a NaN or inf reward in this episode
            self.nonfinite("reward (episode return)", step)
        self.episodes += 1
        self.returns.append(episode_return)
        self.write(step, {"train/episode_return": episode_return, "train/episode_length": length,
                          "train/episodes": self.episodes})

    def metrics(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            value = float(value)
            if not math.isfinite(value):
                self.nonfinite(f"metric {key}", step)
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1

    def nonfinite(self, what: str, step: int) -> None:
        """A NaN or inf in ``what``: ``--on-nonfinite`` stop (raise) or warn once per name."""
        from toolkit.errors import NonFiniteError

        if self.on_nonfinite == "stop":
            raise NonFiniteError(what, step)
        if what not in self.warned:
            self.warned.add(what)
            self.console.print(f"warning: non-finite {what} at step {step:,} (--on-nonfinite warn: training goes on)")

    def progress(self, step: int) -> None:
        now = time.monotonic()
        if step > self.last_step and now > self.last_time + 0.5:
            self.sps = (step - self.last_step) / (now - self.last_time)
            self.last_time, self.last_step = now, step
        parts = [f"{self.sps:,.0f} steps/s"] if self.sps else []
        if self.returns:
            parts.append(f"return {sum(self.returns) / len(self.returns):.2f}")
        for key in list(self.sums)[:2]:
            parts.append(f"{key.split('/')[-1]} {self.sums[key] / self.counts[key]:.3g}")
        self.console.update(step, "  ".join(parts))

    def flush_metrics(self, step: int) -> None:
        """Write the losses averaged since the last write, and throughput: ``perf/sps`` is the
        env steps since the previous metrics line over the seconds since then (updates,
        evaluations and checkpoints in between included), not the progress display's recent
        rate, which misses a long update that happened to fall outside its window."""
        self.progress(step)
        now = time.monotonic()
        sps = (step - self.line_step) / (now - self.line_time) if step > self.line_step and now > self.line_time \
            else self.sps
        self.line_time, self.line_step = now, step
        averaged = {k: self.sums[k] / self.counts[k] for k in self.sums}
        self.write(step, {**averaged, "perf/sps": sps, "perf/elapsed_s": self.elapsed()})
        self.sums.clear()
        self.counts.clear()
        self.flush()

    def flush(self) -> None:
        for logger in list(self.loggers):
            if isinstance(logger, FlushingLogger):
                self._call(logger, "flush")

    def media(self, step: int, media: dict[str, str]) -> None:
        self._each("log_media", step, media)

    def state_dict(self) -> dict[str, Any]:
        return {"returns": list(self.returns), "sums": dict(self.sums), "counts": dict(self.counts),
                "episodes": self.episodes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.returns.extend(state["returns"])
        self.sums, self.counts = dict(state["sums"]), dict(state["counts"])
        self.episodes = int(state["episodes"])

    def close(self) -> None:
        try:
            self._each("close")
        finally:
            self.console.close()
