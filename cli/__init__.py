"""The ``toolkit`` command line (Typer).

Train options are generated from the config dataclasses at run time (field docstrings become
the help text), so ``toolkit train ALGO --help`` shows exactly the options of that algorithm.
torch, gymnasium, ale_py and wandb are imported only by the commands that need them, so
``toolkit --help`` and ``toolkit list`` answer at once.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Optional

import click
import typer

from toolkit.errors import ToolkitError
from toolkit.ranges import SEEDS, Range, check_value, range_of

app = typer.Typer(
    name="toolkit",
    help="Reinforcement-learning and generative-model training with plugins.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def _registry():
    from toolkit.plugins import get_registry

    return get_registry()


def _plan_from_argv(algo: str, argv: list[str]):
    from toolkit.planning import plan_from_argv

    return plan_from_argv(algo, argv, _registry())


def _train_help(algo: str | None) -> None:
    from toolkit.config import RunConfig, describe_type, field_docs, field_types, fields_of, option_name

    registry = _registry()
    if not algo:
        typer.echo("Usage: toolkit train ALGO [OPTIONS]\n\nAlgorithms:")
        for name in registry.names("algorithm"):
            typer.echo(f"  {name:<14} {registry.get('algorithm', name).description}")
        typer.echo("\nSee the options of one: toolkit train ALGO --help")
        return
    from toolkit.planning import load_algorithm

    entry, cls = load_algorithm(algo, registry)
    typer.echo(f"Usage: toolkit train {algo} [OPTIONS]\n\n{entry.description}\n")
    typer.echo("  --config FILE.toml   read options from a TOML file (explicit flags win)")
    presets = getattr(cls, "presets", {}) or {}
    if presets:
        typer.echo(f"  --preset NAME        one of: {', '.join(presets)} (applied automatically to the envs they "
                   "name), or none for the algorithm's defaults")
    for title, config_class in (("Run options", RunConfig), (f"{algo} options", cls.Config)):
        typer.echo(f"\n{title}:")
        docs, types = field_docs(config_class), field_types(config_class)
        for f in fields_of(config_class):
            flag = option_name(f.name)
            if types[f.name] is bool:
                flag += "/--no-" + f.name.replace("_", "-")
            bounds = range_of(f, config_class)
            valid = f"; {bounds.describe()}" if bounds is not None else ""
            typer.echo(f"  {flag} {describe_type(types[f.name]).upper()}  [default: {f.default!r}{valid}]")
            if docs.get(f.name):
                typer.echo(f"      {docs[f.name]}")


@app.command(context_settings=_PASS_THROUGH)
def train(ctx: typer.Context, algo: Optional[str] = typer.Argument(None, help="Algorithm name (see `toolkit list`)")) -> None:
    """Train ALGO; `toolkit train ALGO --help` lists its options."""
    argv = list(ctx.args)
    if algo is None or algo in ("--help", "-h") or "--help" in argv or "-h" in argv:
        _train_help(None if algo in (None, "--help", "-h") else algo)
        return
    from toolkit.run import Run, new_run_dir

    p = _plan_from_argv(algo, argv)
    _exit_if_stopped(Run.start(p, new_run_dir(p)))


@app.command()
def resume(
    run_dir: str = typer.Argument(..., help="The run directory to continue"),
    steps: Optional[int] = typer.Option(None, "--steps", help="New total env steps (default: the run's own)"),
    device: Optional[str] = typer.Option(None, "--device", help="Torch device here: auto, cpu, cuda, mps "
                                         "(default: the run's own; a run moved to another machine may need another)"),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch CPU threads here (default: the run's own)"),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress",
                                            help="Show the progress bar (default: as the run did)"),
) -> None:
    """Continue a run from its latest checkpoint, appending to the same metrics (and W&B run).

    What it trains (algorithm, env, hyperparameters) is the run's own; only the total steps and
    where and how it runs (device, threads, progress bar) can change."""
    from toolkit.run import start_resume

    _exit_if_stopped(start_resume(run_dir, steps=steps, device=device, threads=threads, progress=progress))


def _exit_if_stopped(run) -> None:
    """Train to the end; a run stopped by a signal exits 128 + its number (130 SIGINT, 143
    SIGTERM), after its checkpoint, so schedulers can tell it from a finished one (exit 0)."""
    run.execute()
    if run.stopped_by:
        raise typer.Exit(128 + run.stopped_by)


STOCHASTIC_HELP = ("Act with the exploring policy (SAC/PPO's sampled Gaussian, DQN's final epsilon) instead of "
                   "the deterministic one, its samples seeded as the envs are")


@app.command("eval")
def eval_command(
    target: str = typer.Argument(..., help="A run directory (uses best.pt, else the latest checkpoint) or a .pt file"),
    episodes: Optional[int] = typer.Option(None, "--episodes", help="Episodes to run (default: the run's --eval-episodes)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the evaluation envs"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
    stochastic: bool = typer.Option(False, "--stochastic", help=STOCHASTIC_HELP),
) -> None:
    """Evaluate a checkpoint with the deterministic policy (or --stochastic) on evaluation envs."""
    from toolkit.offline import evaluate_checkpoint

    check_value("--episodes", episodes, Range(1))
    check_value("--seed", seed, SEEDS)
    result = evaluate_checkpoint(target, episodes=episodes, seed=seed, stochastic=stochastic)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(f"{result['algorithm']} on {result['env']} (step {result['step']:,}, {result['checkpoint']}): "
                   f"mean return {result['mean_return']:.2f} +/- {result['std_return']:.2f} over "
                   f"{result['episodes']} episodes{' (stochastic policy)' if stochastic else ''}")


@app.command()
def enjoy(
    target: str = typer.Argument(..., help="A run directory (uses best.pt, else the latest checkpoint) or a .pt file"),
    episodes: int = typer.Option(3, "--episodes", help="Episodes to play"),
    video: Optional[str] = typer.Option(None, "--video", help="Write all episodes to this MP4 (H.264)"),
    render: bool = typer.Option(False, "--render", help="Show the episodes in a window (needs a display)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the env (default: the run's evaluation seed)"),
    stochastic: bool = typer.Option(False, "--stochastic", help=STOCHASTIC_HELP),
) -> None:
    """Watch a trained agent: play episodes with its evaluation policy (or --stochastic), print each return."""
    from toolkit.offline import enjoy_checkpoint
    from toolkit.outputs import check_output_file

    check_value("--episodes", episodes, Range(1, 10_000))
    check_value("--seed", seed, SEEDS)
    if video is not None:
        check_output_file(video, (".mp4",), option="--video")

    def report(index: int, episode_return: float, length: int) -> None:
        typer.echo(f"episode {index + 1}: return {episode_return:.2f} ({length} steps)")

    result = enjoy_checkpoint(target, episodes, video=video, render=render, seed=seed, on_episode=report,
                              stochastic=stochastic)
    typer.echo(f"{result['algorithm']} on {result['env']} (step {result['step']:,}): mean return "
               f"{result['mean_return']:.2f} +/- {result['std_return']:.2f} over {result['episodes']} episodes"
               f"{' (stochastic policy)' if stochastic else ''}")
    if video is not None:
        typer.echo(f"wrote {video}")


@app.command()
def export(
    target: str = typer.Argument(..., help="A run directory (uses best.pt, else the latest checkpoint) or a .pt file"),
    fmt: str = typer.Option("onnx", "--format", help="onnx (runs in onnxruntime) or torchscript (torch.jit.load)"),
    out: Optional[str] = typer.Option(None, "--out", help="File to write (default: policy.onnx / policy.pt)"),
) -> None:
    """Export the deterministic policy (observations -> actions) as a standalone ONNX or TorchScript file."""
    from toolkit.export import FORMATS, export_policy
    from toolkit.outputs import check_output_file

    if fmt not in FORMATS:
        raise ToolkitError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    out = out or f"policy{FORMATS[fmt]}"
    check_output_file(out, (FORMATS[fmt],))
    result = export_policy(target, fmt, out)
    typer.echo(f"wrote {result['file']}: {result['algorithm']} on {result['env']}, input 'obs' "
               f"(N, {', '.join(map(str, result['observation_shape']))}) {result['observation_dtype']}, output 'action'; "
               f"checked against the policy on {result['checked_observations']} observations")


@app.command()
def push(
    target: str = typer.Argument(..., help="The run directory to share"),
    repo: str = typer.Option(..., "--repo", help="Hugging Face Hub repository, user/name (created if missing)"),
    episodes: int = typer.Option(10, "--episodes", help="Evaluation episodes for the model card"),
    with_checkpoint: bool = typer.Option(False, "--with-checkpoint", help="Include the latest full checkpoint (for resume)"),
    private: bool = typer.Option(False, "--private", help="Create the repository private"),
    dry_run: Optional[str] = typer.Option(None, "--dry-run", help="Write the folder that would be uploaded here; upload nothing"),
) -> None:
    """Share a run on the Hugging Face Hub: weights (safetensors), config, model card, curve, video."""
    from pathlib import Path

    from toolkit.hub import push as push_run

    check_value("--episodes", episodes, Range(1, 10_000))
    result = push_run(target, repo, episodes=episodes, with_checkpoint=with_checkpoint, private=private,
                      dry_run=Path(dry_run) if dry_run else None)
    where = f"wrote {result['folder']} (not uploaded)" if dry_run else f"pushed to {result['url']}"
    score = (f"evaluation {result['mean_return']:.2f} +/- {result['std_return']:.2f} over {result['episodes']} episodes"
             if "mean_return" in result else "samples and metrics")
    typer.echo(f"{where}: {result['algorithm']} at step {result['step']:,}, {score}")


@app.command()
def pull(
    source: str = typer.Argument(..., help="A Hub repository (user/name) or a local folder pushed with --dry-run"),
    run_dir: Optional[str] = typer.Option(None, "--run-dir", help="Run directory to create (default: runs/hub/<name>)"),
) -> None:
    """Download a shared run into a run directory that eval, enjoy, sample, load and resume accept."""
    from pathlib import Path

    from toolkit.hub import pull as pull_run

    target = Path(run_dir) if run_dir else Path("runs") / "hub" / Path(source.rstrip("/")).name
    typer.echo(f"pulled {source} into {pull_run(source, target)}")


@app.command()
def sample(
    target: str = typer.Argument(..., help="A generative run's directory (best.pt, else the latest checkpoint) or a .pt file"),
    n: int = typer.Option(64, "--n", help="Number of samples"),
    out: str = typer.Option("samples.png", "--out", help="PNG to write (an image grid, or a scatter plot for 2-D data)"),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling noise"),
) -> None:
    """Draw samples from a trained generative model (GAN, VAE) into a PNG."""
    from toolkit.offline import sample_checkpoint
    from toolkit.outputs import check_output_file

    check_value("--n", n, Range(1, 10_000))  # more does not fit in one picture
    check_value("--seed", seed, SEEDS)
    check_output_file(out, (".png", ".jpg", ".jpeg"))
    typer.echo(f"wrote {sample_checkpoint(target, n, out, seed)}")


@app.command("list")
def list_command() -> None:
    """Algorithms, samplers, env families and datasets, one line each."""
    registry = _registry()
    for kind, title in (("algorithm", "Algorithms"), ("sampler", "Replay samplers"), ("env", "Env families"),
                        ("dataset", "Datasets"), ("logger", "Loggers")):
        typer.echo(f"{title}:")
        names = sorted([*registry.names(kind), *registry.ambiguous(kind)])
        for name in names:
            if (kind, name) in registry.conflicts:  # listed, not used: only a qualified name chooses
                owners = registry.conflicts[(kind, name)]
                typer.echo(f"  {name:<14} registered by several plugins: use " + " or ".join(f"{o}:{name}" for o in owners))
                continue
            entry = registry.get(kind, name)
            typer.echo(f"  {name:<14} {entry.description}  [{entry.plugin}]")
        if not names:
            typer.echo("  (none installed)")
    typer.echo("\nAny registered gymnasium id also works as --env.")


@app.command()
def plugins(as_json: bool = typer.Option(False, "--json", help="Print a JSON list")) -> None:
    """Installed plugins: name, version, hooks, what they provide, and load errors."""
    from dataclasses import asdict

    infos = _registry().plugins
    if as_json:
        typer.echo(json.dumps([asdict(i) for i in infos], indent=2))
        return
    for info in infos:
        status = f"ERROR: {info.error}" if info.error else ", ".join(info.provides) or "-"
        kind = " (built-in)" if info.builtin else ""
        typer.echo(f"{info.name} {info.version or ''}{kind}: {status}")
        for clash in info.clashes:
            typer.echo(f"  CLASH: {clash}")
        for warning in info.warnings:
            typer.echo(f"  warning: {warning}")


@app.command()
def plot(
    run_dirs: list[str] = typer.Argument(..., help="Run directories; runs sharing algorithm and env become mean + band"),
    out: str = typer.Option("curve.png", "--out", help="PNG file to write"),
    smoothing: int = typer.Option(20, "--smoothing", help="Episodes in the moving average of training returns"),
    metric: list[str] = typer.Option([], "--metric",
                                     help="Plot this metric of metrics.jsonl instead (repeatable), e.g. loss/td or eval/nll"),
) -> None:
    """Plot evaluation and training return (or any logged metric) against env steps."""
    from pathlib import Path

    from toolkit.outputs import check_output_file
    from toolkit.plot import plot_runs

    check_value("--smoothing", smoothing, Range(1))
    check_output_file(out, (".png", ".pdf", ".svg", ".jpg", ".jpeg"))
    typer.echo(f"wrote {plot_runs([Path(d) for d in run_dirs], Path(out), smoothing=smoothing, metrics=metric)}")


@app.command(context_settings=_PASS_THROUGH)
def config(ctx: typer.Context, algo: str = typer.Argument(..., help="Algorithm name")) -> None:
    """Print the resolved config of ALGO (with --env ENV and any other options) as TOML."""
    if algo in ("--help", "-h"):
        typer.echo(ctx.get_help())
        return
    p = _plan_from_argv(algo, list(ctx.args))
    typer.echo(p.toml(), nl=False)


_python_format_warning = warnings.formatwarning


def _format_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                    line: str | None = None) -> str:
    """A user-facing warning (UserWarning, RuntimeWarning) as one line, like the errors; the
    developer-facing ones (DeprecationWarning, ...) as Python prints them, with the source line."""
    if category in (UserWarning, RuntimeWarning):
        return f"warning: {message}\n"
    return _python_format_warning(message, category, filename, lineno, line)


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input is one line on stderr and exit code 2, never a traceback."""
    from toolkit.signals import Interrupted, interrupt_on_signals

    previous_format, warnings.formatwarning = warnings.formatwarning, _format_warning
    try:
        with interrupt_on_signals():
            return _main(argv)
    except Interrupted as exc:  # before training started (a signal during it checkpoints first)
        print(f"error: stopped by {exc}", file=sys.stderr)
        return 128 + exc.signal
    finally:  # main() also runs inside other programs (tests, notebooks): leave their warnings as they were
        warnings.formatwarning = previous_format


def _main(argv: list[str] | None) -> int:
    try:
        _registry().call_commands(app)
        status = app(args=argv, prog_name="toolkit", standalone_mode=False)
        if isinstance(status, int) and not isinstance(status, bool):  # click returns typer.Exit's code here
            return status
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code  # 2 refused input, 1 a run that failed
    except OSError as exc:  # a filesystem error no command foresaw: still one line naming the path
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except (typer.Exit, click.exceptions.Exit) as exc:
        return exc.exit_code
    except (typer.Abort, click.exceptions.Abort):
        print("aborted", file=sys.stderr)
        return 130
    except Exception as exc:
        if type(exc).__name__ == "DependencyNotInstalled":  # gymnasium: an env's optional extra is missing
            from toolkit.planning import missing_dependency_message

            print(f"error: {missing_dependency_message(exc)}", file=sys.stderr)
            return 2
        # Usage errors from the (possibly vendored) click inside typer: one line, exit 2.
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
