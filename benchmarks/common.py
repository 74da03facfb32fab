"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def source_commit() -> str:
    """The commit the benchmark runs at, ``+dirty`` when the tree has uncommitted changes:
    kept beside each result in a ``--results`` file, so rows measured by older code can be
    found and dropped when a default changes."""
    repo = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                                check=True).stdout.strip()
        # the results files themselves grow while benchmarks run: they do not make the code dirty
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)",
                                ":(top,exclude)benchmarks/results"], cwd=repo,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def training_rate(run_dir: Path, after_step: int = 0) -> float:
    """Env steps/s of a toolkit run's training loop after ``after_step``, from the
    ``perf/sps`` lines of its metrics.jsonl (each covers the steps since the previous line),
    so start-up and the final evaluation are not counted."""
    records = read_metrics(run_dir)
    seconds, previous = 0.0, after_step
    for record in records:
        if record.get("perf/sps") and record["step"] > after_step:
            seconds += (record["step"] - previous) / record["perf/sps"]
            previous = record["step"]
    return (previous - after_step) / seconds


def sweep_runs(algo: str, train_args: list[str], seeds: list[int], sweep_dir: Path, concurrency: int,
               grid: dict[str, list[str]] | None = None) -> dict[tuple, Path]:
    """Toolkit runs through ``toolkit sweep`` (the toolkit-ray plugin, on Ray Tune): ``algo`` with
    ``train_args``, every value of each ``grid`` axis with every seed, ``concurrency`` runs at
    once with one torch thread each. Returns ``{(grid values..., seed): run dir}``.

    The sweep's directory is kept: run the benchmark again after an interruption and the sweep
    continues (``--resume``; finished runs are not run again)."""
    import csv
    import sys

    grid = grid or {}
    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / "summary.csv").exists():
        if (sweep_dir / "sweep.json").exists():
            command = ["--resume", str(sweep_dir)]
        else:
            command = [algo, *train_args, "--seed-list", ",".join(map(str, seeds)), "--concurrency", str(concurrency),
                       "--sweep-dir", str(sweep_dir)]
            for name, values in grid.items():
                command += ["--grid", f"{name}={','.join(map(str, values))}"]
        subprocess.run([sys.executable, "-m", "toolkit.cli", "sweep", *command], check=True)
    runs = {}
    for row in csv.DictReader(open(sweep_dir / "summary.csv")):
        if row["status"] != "finished":
            raise RuntimeError(f"{row['run_dir']} {row['status']}: see its trial.log")
        runs[(*(row[name] for name in grid), int(row["seed"]))] = Path(row["run_dir"])
    return runs


def as_flags(options: dict) -> list[str]:
    """``{"learning_rate": 1e-3, "hidden": (64, 64)}`` -> ``["--learning-rate", "0.001", "--hidden", "64,64"]``."""
    flags = []
    for name, value in options.items():
        text = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else repr(value) if isinstance(value, float) \
            else str(value)
        flags += ["--" + name.replace("_", "-"), text]
    return flags


def monitor_curve(monitor_dir: Path) -> list[tuple[int, float]]:
    """(env steps so far, return) per training episode from SB3's Monitor files: episodes of
    all envs ordered by their end time, steps summed over envs."""
    episodes = []
    for path in Path(monitor_dir).glob("*.monitor.csv"):
        lines = path.read_text().splitlines()[2:]  # a JSON header, then "r,l,t"
        episodes += [(float(t), int(length), float(r)) for r, length, t in (line.split(",") for line in lines)]
    curve, steps = [], 0
    for _, length, episode_return in sorted(episodes):
        steps += length
        curve.append((steps, episode_return))
    return curve


def toolkit_learn_resumably(algo: str, work_dir: Path | None, every: int, **options: Any) -> tuple[list[dict], float]:
    """``toolkit.train(algo, **options)`` that survives being stopped: the run keeps its
    directory in ``work_dir`` with a checkpoint (its replay included) every ``every`` steps, and
    a later call continues it with ``toolkit.resume`` (exactly). Returns the run's metric
    records and its training env steps/s (``training_rate``). Without ``work_dir``: a run in a
    temporary directory, no checkpoints. The checkpoints are deleted at the end."""
    import toolkit
    from toolkit.rundir import read_status

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(work_dir or Path(tmp) / "run")
        if read_status(run_dir).get("status") == "finished":
            pass
        elif run_dir.exists():  # stopped: on from its last checkpoint
            toolkit.resume(run_dir)
        else:
            toolkit.train(algo, checkpoint_every=every if work_dir else 0, save_replay=bool(work_dir),
                          keep_checkpoints=1, run_dir=str(run_dir), **options)
        records, sps = read_metrics(run_dir), training_rate(run_dir)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # replays are large; results go to --results files
    return records, sps


def sb3_learn_resumably(algorithm: type, make_env: Callable[[int, Path], Any], make_model: Callable[[Any], Any],
                        seed: int, steps: int, work_dir: Path | None, every: int) -> tuple[Any, Any, float, list]:
    """An SB3 ``learn`` of ``steps`` env steps that survives being stopped: every ``every`` steps
    the model, its replay buffer and its VecNormalize statistics go to ``work_dir`` with a
    ``state.json`` (steps, seconds of training so far, Monitor segments), and a later call with
    the same ``work_dir`` continues from there in a new env (``make_env(seed + steps, monitor
    dir)``; SB3 saves no env or generator state, so this is not bit-exact). Returns the model,
    its env, the seconds of training that were kept (earlier segments included) and the
    training episodes as (env step, return), the segments joined. Without ``work_dir``: one
    plain ``learn`` in a temporary directory. The checkpoints are deleted at the end."""
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecNormalize

    work_dir = Path(work_dir or tempfile.mkdtemp())
    work_dir.mkdir(parents=True, exist_ok=True)
    state_file = work_dir / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {"steps": 0, "seconds": 0.0, "segments": []}
    monitor = work_dir / f"monitor-{len(state['segments'])}"
    shutil.rmtree(monitor, ignore_errors=True)  # a segment stopped before its first checkpoint is all redone
    state["segments"].append([monitor.name, state["steps"]])
    env = make_env(seed + state["steps"], monitor)
    if state["steps"]:
        checkpoint = work_dir / state["checkpoint"]
        if (checkpoint / "vecnormalize.pkl").exists():
            env = VecNormalize.load(str(checkpoint / "vecnormalize.pkl"), env.venv)
        model = algorithm.load(checkpoint / "model.zip", env=env, device="cpu")
        if hasattr(model, "replay_buffer"):
            model.load_replay_buffer(checkpoint / "replay.pkl")
    else:
        model = make_model(env)
    began, seconds_before = time.perf_counter(), state["seconds"]

    class Checkpoints(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps - state["steps"] >= every:
                checkpoint = work_dir / f"step_{self.num_timesteps:09d}"
                checkpoint.mkdir(exist_ok=True)
                self.model.save(checkpoint / "model.zip")
                if hasattr(self.model, "replay_buffer"):
                    self.model.save_replay_buffer(checkpoint / "replay.pkl")
                if isinstance(self.model.get_env(), VecNormalize):
                    self.model.get_env().save(str(checkpoint / "vecnormalize.pkl"))
                state.update(steps=self.num_timesteps, checkpoint=checkpoint.name,
                             seconds=seconds_before + time.perf_counter() - began)
                (work_dir / "state.json.tmp").write_text(json.dumps(state))
                os.replace(work_dir / "state.json.tmp", state_file)  # the checkpoint counts from here on
                for older in work_dir.glob("step_*"):
                    if older != checkpoint:
                        shutil.rmtree(older)
            return True

    model.learn(steps - state["steps"], reset_num_timesteps=state["steps"] == 0, callback=Checkpoints())
    seconds = seconds_before + time.perf_counter() - began
    curve = []
    for k, (segment, start) in enumerate(state["segments"]):  # each cut where the next took over
        end = state["segments"][k + 1][1] if k + 1 < len(state["segments"]) else float("inf")
        curve += [(start + step, r) for step, r in monitor_curve(work_dir / segment) if start + step <= end]
    for checkpoint in work_dir.glob("step_*"):  # replay buffers are large; results go to --results files
        shutil.rmtree(checkpoint)
    return model, env, seconds, curve


def seconds_to_step(records: list[dict], step: int) -> float | None:
    """Wall-clock seconds from a run's start until it had logged ``step`` (``perf/elapsed_s``
    of the first line at or after it that carries one; start-up and evaluations included)."""
    return next((r["perf/elapsed_s"] for r in records if r["step"] >= step and "perf/elapsed_s" in r), None)


def read_metrics(run_dir: Path) -> list[dict]:
    """A run's metrics.jsonl as a list of records."""
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def result_key(job: tuple, extra_args: list[str] = ()) -> str:
    """How a results file names a (lib, env, seed) job run with ``extra_args``."""
    return json.dumps([*map(str, job), *extra_args])


def read_results(results_file: Path) -> dict[str, dict]:
    """The finished jobs of a results file (none if it does not exist): key -> result."""
    if not Path(results_file).exists():
        return {}
    return {record["key"]: record["result"]
            for record in map(json.loads, Path(results_file).read_text().splitlines())}


def run_workers(script: str, jobs: list[tuple], parallel: int, extra_args: list[str] = (),
                results_file: Path | None = None, placement_args: list[str] = ()) -> dict[tuple, dict]:
    """Run ``python SCRIPT --worker LIB ENV SEED [EXTRA_ARGS] [PLACEMENT_ARGS]`` for every (lib, env, seed) job,
    ``parallel`` processes at a time; each worker prints one JSON line with at least ``final`` and ``sps``.
    For jobs that are not all toolkit runs (an SB3 side, a post-processing step per job);
    toolkit seeds and grids go through ``sweep_runs``.
    Prints a line per finished job and returns job -> result.

    With ``results_file``, every finished job is appended to it as a JSON line and jobs already
    there (same job and extra arguments) are not run again: an interrupted benchmark resumes,
    and a table can grow by adding algorithms or seeds. ``placement_args`` reach the workers
    but not the key: where a job keeps its work, not what it computes."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    def key(job: tuple) -> str:
        return result_key(job, extra_args)

    done = read_results(results_file) if results_file else {}
    commit = source_commit()

    def launch(job: tuple) -> tuple[tuple, dict]:
        if key(job) in done:
            return job, done[key(job)]
        started = time.monotonic()
        print(f"  {job[0]:11s} {job[1]:15s} seed {job[2]}: started {time.strftime('%H:%M')}", flush=True)
        out = subprocess.run([sys.executable, script, "--worker", *map(str, job), *extra_args, *placement_args],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{job} failed: {out.stderr[-2000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {job[0]:11s} {job[1]:15s} seed {job[2]}: final {result['final']:8.1f} ({result['sps']:.0f} steps/s, "
              f"{(time.monotonic() - started) / 60:.0f} min)", flush=True)
        if results_file:
            with open(results_file, "a") as f:  # one write per line: parallel jobs do not interleave
                f.write(json.dumps({"key": key(job), "commit": commit, "result": result}) + "\n")
        return job, result

    if done:
        print(f"  {sum(key(job) in done for job in jobs)} of {len(jobs)} jobs already in {results_file}", flush=True)
    with ThreadPoolExecutor(parallel) as pool:
        return dict(pool.map(launch, jobs))


def plot_curves(panels: dict[str, dict[str, list]], out: Path, ylabel: str, smoothing: int = 0) -> None:
    """One panel per title; in each, per label, the mean over seeds of the curves (lists of
    (env step, value)), put on a common step grid, with a band of one standard deviation.
    ``smoothing`` > 1 first takes a trailing moving average over that many points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from toolkit.plot import on_grid, smooth

    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    for ax, (title, groups) in zip(axes[0], panels.items()):
        for label, curves in groups.items():
            arrays = [np.array(curve, dtype=float) for curve in curves]
            if smoothing > 1:
                arrays = [np.column_stack([a[:, 0], smooth(a[:, 1], smoothing)]) for a in arrays]
            grid, values = on_grid(arrays)
            mean, std = values.mean(axis=0), values.std(axis=0)
            ax.plot(grid, mean, label=label)
            ax.fill_between(grid, mean - std, mean + std, alpha=0.2)
        ax.set_title(title)
        ax.set_xlabel("env steps")
        ax.set_ylabel(ylabel)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"curves: {out}")


def image_panel(ax, samples, title: str) -> None:
    """An 8-column grid of (N, C, H, W) images in [0, 1] on a matplotlib axis, without ticks."""
    import numpy as np
    from toolkit.images import make_grid

    ax.imshow(make_grid(np.asarray(samples, dtype=np.float32), columns=8).squeeze(), cmap="gray",
              interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def versus(values: list[float], baseline: list[float]) -> str:
    """The difference of means to the baseline with the p-value of Welch's t-test; the p is
    undefined below two values a side or where neither side varies (CartPole's 500s)."""
    difference = f"{statistics.mean(values) - statistics.mean(baseline):+.1f}"
    if min(len(values), len(baseline)) < 2 or statistics.pstdev(values) + statistics.pstdev(baseline) == 0:
        return f"{difference} (p undefined)"
    from scipy import stats

    return f"{difference} (p {stats.ttest_ind(values, baseline, equal_var=False).pvalue:.2f})"
