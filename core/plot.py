"""Learning curves from run directories: evaluation and training return (or any logged
metric) against env steps.

Runs that share an algorithm and an env are one group, drawn as the mean across seeds with
a band of one standard deviation (and the min-max range, lighter); a group of one run is a
plain line. Training returns are smoothed with a moving average over episodes.
"""

from __future__ import annotations

import json
import tomllib
from collections import defaultdict
from pathlib import Path

import numpy as np

from toolkit.errors import ToolkitError


def expand_run_dirs(paths: list[Path]) -> list[Path]:
    """Run directories, with a directory of runs (a sweep's, holding ``runs/<trial>/``) replaced
    by the runs inside it that have metrics."""
    expanded = []
    for path in paths:
        inner = sorted(d for d in (path / "runs").glob("*") if (d / "metrics.jsonl").is_file()) \
            if not (path / "config.toml").exists() else []
        expanded.extend(inner or [path])
    return expanded


def read_run(run_dir: Path) -> dict:
    """A run's algorithm, env (or dataset), seed and every numeric metric as (step, value) rows."""
    config_path = run_dir / "config.toml"
    metrics_path = run_dir / "metrics.jsonl"
    if not config_path.is_file() or not metrics_path.is_file():
        raise ToolkitError(f"{run_dir} is not a toolkit run directory (needs config.toml and metrics.jsonl)")
    config = tomllib.loads(config_path.read_text())
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for line in metrics_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                series[key].append((record["step"], value))
    run = config.get("run", {})
    metrics = {key: np.array(rows, dtype=float).reshape(-1, 2) for key, rows in series.items()}
    return {"algo": config.get("algorithm", "?"), "env": run.get("env") or run.get("data", "?"),
            "seed": run.get("seed"), "metrics": metrics, "dir": run_dir, "config": config}


def group_label(run: dict, group_by: list[str]) -> str:
    """The algorithm, then ``name=value`` of each config field in ``group_by`` (an algorithm or
    run option): runs with the same label are drawn as one group."""
    sections = run["config"].get("algo", {}), run["config"].get("run", {})
    values = [f"{name}={next((s[name] for s in sections if name in s), '?')}" for name in group_by]
    return " ".join([run["algo"], *values])


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (shorter at the start, so the curve starts at the first episode)."""
    if len(values) == 0:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumulative[1:] - cumulative[np.arange(1, len(values) + 1) - counts]) / counts


def on_grid(curves: list[np.ndarray], points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """All curves interpolated onto a common step grid over the steps they all cover."""
    low = max(c[0, 0] for c in curves)
    high = min(c[-1, 0] for c in curves)
    grid = np.linspace(low, high, points) if high > low else np.array([low])
    return grid, np.stack([np.interp(grid, c[:, 0], c[:, 1]) for c in curves])


def plot_runs(run_dirs: list[Path], out: Path, smoothing: int = 20, metrics: list[str] | None = None,
              group_by: list[str] = ()) -> Path:
    """Evaluation and training return per env, or with ``metrics`` one panel per named metric
    (``train/episode_*`` metrics smoothed like the training return). Runs group by algorithm
    and, with ``group_by``, by the values of those config fields (a sweep's grid axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    runs = [read_run(d) for d in expand_run_dirs([Path(d) for d in run_dirs])]
    if metrics:
        check_metrics(runs, metrics)
        panels = [(name, name + (f" (moving average of {smoothing})" if name.startswith("train/episode_") else ""))
                  for name in metrics]
    else:
        panels = [("eval/mean_return", "evaluation return (deterministic policy)"),
                  ("train/episode_return", f"training episode return (moving average of {smoothing})")]
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for run in runs:
        groups[(group_label(run, list(group_by)), run["env"])].append(run)
    envs = sorted({env for _, env in groups})
    # One row per env (returns of different envs do not share a scale), one column per curve.
    fig, axes = plt.subplots(len(envs), len(panels), figsize=(6 * len(panels), 4.2 * len(envs)), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    algos = sorted({algo for algo, _ in groups})
    empty = np.zeros((0, 2))
    for row, env in enumerate(envs):
        last_step = max((r["metrics"][k][-1, 0] for r in runs if r["env"] == env for k, _ in panels
                         if len(r["metrics"].get(k, empty))), default=1.0)
        for ax, (key, ylabel) in zip(axes[row], panels):
            ax.set_xlim(0, last_step * 1.02)  # the panels of a row share the step axis
            drawn = False
            for algo in algos:
                members = [m["metrics"].get(key, empty) for m in groups.get((algo, env), [])]
                curves = [c if not key.startswith("train/episode_") else np.column_stack([c[:, 0], smooth(c[:, 1], smoothing)])
                          for c in members if len(c)]
                if not curves:
                    continue
                color = colors[algos.index(algo) % len(colors)]
                label = algo + (f" ({len(curves)} seeds)" if len(curves) > 1 else "")
                if len(curves) == 1:
                    ax.plot(curves[0][:, 0], curves[0][:, 1], color=color, label=label,
                            marker="o" if len(curves[0]) <= 50 else None, markersize=3)  # dots for sparse evals
                else:
                    grid, values = on_grid(curves)
                    mean, std = values.mean(axis=0), values.std(axis=0)
                    ax.plot(grid, mean, color=color, label=label + ", mean")
                    ax.fill_between(grid, mean - std, mean + std, color=color, alpha=0.25, label="± 1 std")
                    ax.fill_between(grid, values.min(axis=0), values.max(axis=0), color=color, alpha=0.08,
                                    label="min-max")
                drawn = True
            ax.set_title(env, fontsize=10)
            ax.set_xlabel("env steps")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter())
            if drawn:
                ax.legend(fontsize=8, loc="best")
            else:
                ax.text(0.5, 0.5, f"no {key} logged", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"{len(runs)} run{'s' if len(runs) != 1 else ''}: " + ", ".join(algos))
    return save_figure(fig, out, dpi=120)


def check_metrics(runs: list[dict], names: list[str]) -> None:
    """A clear error for a metric no run logged, with the closest names that were."""
    import difflib

    logged = sorted({key for run in runs for key in run["metrics"]})
    for name in names:
        if name not in logged:
            close = difflib.get_close_matches(name, logged, n=3, cutoff=0.4)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; logged: {', '.join(logged[:12])}"
            raise ToolkitError(f"no run logged the metric '{name}'{hint}")


def save_figure(fig, out: Path, dpi: int) -> Path:
    """Lay out, write (creating the directory) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def scatter_points(points: np.ndarray, out: Path, reference: np.ndarray | None = None) -> Path:
    """Generated 2-D points (blue) over the data they model (grey): the picture of mode collapse."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    if reference is not None:
        ax.scatter(reference[:, 0], reference[:, 1], s=2, color="0.7", label="data")
    ax.scatter(points[:, 0], points[:, 1], s=2, color="tab:blue", alpha=0.6, label="samples")
    ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="upper right", markerscale=4)
    return save_figure(fig, out, dpi=100)
