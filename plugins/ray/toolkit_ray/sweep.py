"""``toolkit sweep``: many toolkit runs on Ray Tune, seeds in parallel or an Optuna search.

One trial is one ordinary ``toolkit train`` process with its own run directory inside the sweep
directory, so a trial is exactly a standalone run: same metrics, same checkpoints, and a trial
cut short continues with ``toolkit resume``. The Tune trainable only starts that process, reads
its ``metrics.jsonl`` as it grows and reports the chosen metric to Tune (whose scheduler may
prune the trial: the process then gets SIGTERM, checkpoints and stops).

Sweep directory::

    sweep.json  runs/<trial id>/ (toolkit run dirs + trial.log)  tune/ (Ray Tune's state)
    summary.csv  best.toml  sweep.png
"""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.signals import StopFlag
from toolkit_ray.search import Dimension, as_flag_value, parse_dimension, parse_grid

DEFAULT_METRIC = "eval/mean_return"
STOPPING = "STOPPING"
"""A file in the sweep directory while an interrupted sweep winds down."""
POLL_SECONDS = 0.1
TRIAL_LOCK = ".trial.lock"
"""Held by a trial's toolkit process for its whole life, from before it touches the run."""
EXIT_NOT_WANTED = 75
"""A trial process's exit status when it left without running (see ``_toolkit_main``)."""


@dataclass
class SweepOptions:
    """What ``toolkit sweep`` was asked for (kept in ``sweep.json`` for ``--resume``)."""

    algo: str | None
    train_argv: list[str] = field(default_factory=list)
    seeds: int | None = None
    seed_list: str | None = None
    search: list[str] = field(default_factory=list)
    grid: list[str] = field(default_factory=list)
    trials: int = 8
    pruner: str = "asha"
    metric: str | None = None
    mode: str = "max"
    concurrency: int | None = None
    sweep_dir: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class Sweep:
    """A checked sweep: the plan every trial starts from, and what varies between trials."""

    options: SweepOptions
    directory: Path
    dimensions: tuple[Dimension, ...]
    seeds: tuple[int, ...]
    metric: str
    threads: int
    total_steps: int
    concurrency: int
    driver: tuple[str, int] = ("", 0)
    """(host, pid) of the ``toolkit sweep`` process: trials on its machine stop when it dies."""
    preload: tuple[str, ...] = ()
    """Modules a trial process needs beyond toolkit's own (the algorithm's plugin), imported
    once per Ray worker: see ``start_toolkit_process``."""
    grid: tuple[Dimension, ...] = ()
    """``--grid`` axes: every combination of their values runs, with every seed."""

    @property
    def param_space(self) -> dict[str, Any]:
        from ray import tune

        space = {d.name: d.to_tune() for d in (*self.grid, *self.dimensions)}
        if self.seeds:
            space["seed"] = tune.grid_search(list(self.seeds))
        return space

    @property
    def varied(self) -> list[str]:
        """The names that differ between trials, as the summary's columns."""
        return [d.name for d in (*self.grid, *self.dimensions)] + (["seed"] if self.seeds else [])


# -- checking, before Ray starts --------------------------------------------------------------


def prepare(options: SweepOptions, resuming: bool = False) -> Sweep:
    """Check everything the sweep was given (the base plan, every searched name and the ends of
    its range, the seeds) and choose the sweep directory; nothing is created."""
    from toolkit.planning import plan_from_argv

    if not options.algo:
        raise ToolkitError("toolkit sweep needs an algorithm, e.g. toolkit sweep dqn --env CartPole-v1 --seeds 4")
    if options.mode not in ("max", "min"):
        raise ToolkitError(f"--mode must be max or min, got '{options.mode}'")
    if options.pruner not in ("asha", "median", "none"):
        raise ToolkitError(f"--pruner must be asha, median or none, got '{options.pruner}'")
    if "--run-dir" in options.train_argv or "--seed" in options.train_argv and (options.seeds or options.seed_list):
        raise ToolkitError("a sweep chooses each trial's --run-dir (and --seed in a seed sweep); leave them out")
    base = plan_from_argv(options.algo, options.train_argv)
    seeds = _seeds(options)
    dimensions = tuple(parse_dimension(spec) for spec in options.search)
    grid = tuple(parse_grid(spec) for spec in options.grid)
    if dimensions and (seeds or grid):
        raise ToolkitError("a --search samples its trials: give it without --seeds/--seed-list/--grid")
    if not seeds and not dimensions and not grid:
        raise ToolkitError("nothing to sweep: give --seeds N, --seed-list 0,3,7, --grid NAME=V1,V2 or "
                           "--search NAME=KIND(...)")
    if len({d.name for d in (*dimensions, *grid)}) != len(dimensions) + len(grid):
        raise ToolkitError("each option may be searched (or be a grid axis) once")
    if "seed" in {d.name for d in grid}:
        raise ToolkitError("give seeds with --seeds N or --seed-list, not as a --grid axis")
    for dimension in (*dimensions, *grid):  # every name exists and both ends (every value) pass planning
        for value in dimension.probes():
            plan_from_argv(options.algo, [*options.train_argv, "--" + dimension.name.replace("_", "-"),
                                          as_flag_value(value)])
    if options.trials < 1:
        raise ToolkitError(f"--trials must be >= 1, got {options.trials}")
    metric = options.metric or (DEFAULT_METRIC if base.algo_class.loop == "env" else "")
    if not metric:
        raise ToolkitError(f"'{options.algo}' is a generative trainer: name the metric to optimise, e.g. "
                           "--metric eval/nll --mode min")
    threads = base.run.threads or 1
    cpus = os.cpu_count() or 1
    concurrency = options.concurrency if options.concurrency is not None else max(1, cpus // threads)
    if concurrency < 1:
        raise ToolkitError(f"--concurrency must be >= 1, got {concurrency}")
    subject = (base.spec.id if base.spec else base.run.data).replace("/", "-")
    # absolute: Ray Tune runs each trial function in its own working directory
    directory = Path(options.sweep_dir or f"sweeps/{options.algo}__{subject}__{int(time.time())}").absolute()
    if not resuming and directory.exists() and any(directory.iterdir()):
        raise ToolkitError(f"{directory} is not empty; continue a sweep with --resume {directory} or choose "
                           "another --sweep-dir")
    return Sweep(options, directory, dimensions, seeds, metric, threads, base.run.steps, concurrency,
                 preload=(base.algo_class.__module__,), grid=grid)


def _seeds(options: SweepOptions) -> tuple[int, ...]:
    if options.seeds is not None and options.seed_list:
        raise ToolkitError("give --seeds N or --seed-list, not both")
    if options.seeds is not None:
        if options.seeds < 1:
            raise ToolkitError(f"--seeds must be >= 1, got {options.seeds}")
        return tuple(range(options.seeds))
    if options.seed_list:
        try:
            seeds = tuple(int(s) for s in options.seed_list.split(","))
        except ValueError:
            raise ToolkitError(f"--seed-list takes comma-separated integers, got '{options.seed_list}'") from None
        if any(s < 0 or s > 2**32 - 1 for s in seeds) or len(set(seeds)) != len(seeds):
            raise ToolkitError(f"--seed-list needs distinct seeds in [0, 4294967295], got '{options.seed_list}'")
        return seeds
    return ()


# -- one trial --------------------------------------------------------------------------------


def trial_command(sweep: Sweep, config: dict[str, Any], run_dir: Path) -> list[str]:
    """The toolkit command line of a trial: ``train`` with its values, or ``resume`` of its run."""
    if (run_dir / "config.toml").exists():
        return ["resume", str(run_dir)]
    argv = ["train", sweep.options.algo, *sweep.options.train_argv]
    for name, value in sorted(config.items()):
        argv += ["--" + name.replace("_", "-"), as_flag_value(value)]
    if "--threads" not in argv:
        argv += ["--threads", str(sweep.threads)]
    if "--track" in argv and "--wandb-group" not in argv:
        argv += ["--wandb-group", sweep.directory.name]
        tags = ",".join(f"{k}={as_flag_value(v)}" for k, v in sorted(config.items()))
        argv += ["--wandb-tags", tags] if "--wandb-tags" not in argv else []
    return [*argv, "--run-dir", str(run_dir), "--no-progress"]


def _record_placement(run_dir: Path, config: dict[str, Any], pid: int) -> None:
    """``trial.json``: the trial's values, where it ran (Ray node, host) and the pid of its
    toolkit process, appended per start."""
    import socket

    import ray

    starts = _read_trial_record(run_dir).get("starts", [])
    starts.append({"node_id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
                   "pid": pid, "time": time.time()})
    tmp = run_dir / ".trial.json.tmp"
    tmp.write_text(json.dumps({"config": config, "starts": starts}, indent=2, default=str))
    tmp.replace(run_dir / "trial.json")


def _read_trial_record(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / "trial.json").read_text())
    except (OSError, ValueError):
        return {}


def _wait_for_trial_process(run_dir: Path, timeout: float) -> None:
    """Until no toolkit process of this trial runs. A resumed sweep can find the interrupted
    sweep's process of a trial still there: checkpointing, or starting up (a driver killed just
    as it started the trial), before it has locked its run directory."""
    from toolkit import rundir

    deadline = time.monotonic() + timeout
    rundir.wait_until_unlocked(run_dir, timeout, lock_file=TRIAL_LOCK)
    # a process started by an older toolkit holds only the run's own lock
    rundir.wait_until_unlocked(run_dir, max(deadline - time.monotonic(), 1.0))


def _stop_when_driver_dies(process: Any, driver: tuple[str, int]) -> None:
    """SIGTERM to the trial process (it checkpoints) once the sweep's driver is gone, so that
    ``--resume`` continues the trial from there."""
    while process.is_alive():
        if not _driver_alive(driver):
            process.terminate()
            return
        time.sleep(POLL_SECONDS)


def _driver_alive(driver: tuple[str, int]) -> bool:
    """False once the sweep's driver process is gone (checked on its own machine only)."""
    import socket

    host, pid = driver
    return not pid or host != socket.gethostname() or _alive(pid)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine runs; one that exited but is not reaped yet (a
    zombie, as a Ray worker is for a moment after its raylet dies) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def start_toolkit_process(argv: list[str], run_dir: Path, sweep: Sweep) -> Any:
    """``toolkit ARGV`` in a new process, its output appended to ``run_dir/trial.log``; a
    started ``multiprocessing.Process``.

    The process is forked from a server process (multiprocessing's forkserver, one per Ray
    worker) that imported torch, gymnasium and the algorithm's plugin once: every trial after the
    first on a Ray worker starts in a fraction of a second instead of paying those imports
    (about 6 s here, half of it ``torch._dynamo``, which a process's first optimizer imports).
    The server itself is a fresh, single-threaded Python, not a fork of the Ray worker."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    # Read by torch when the server imports it; a Ray worker has no server yet before its first trial.
    os.environ["OMP_NUM_THREADS"] = str(sweep.threads)
    context.set_forkserver_preload(["torch", "torch._dynamo", "gymnasium", "toolkit.cli", "toolkit.run",
                                    *sweep.preload])
    process = context.Process(target=_toolkit_main, args=(argv, str(run_dir), os.getpid()), name="toolkit-trial")
    process.start()
    return process


def _toolkit_main(argv: list[str], run_dir: str, requester: int) -> None:
    """The trial process: signals unblocked (a Ray worker blocks some, and children inherit the
    mask), SIGTERM (so, a checkpoint) once the Ray worker that asked for it (``requester``) or
    the server that forked it dies, output to ``trial.log``.

    It holds the trial's lock from its first line to its exit, and leaves at once, touching
    nothing, when another process holds it or its worker is already gone: the server forks a
    process asked for while it was starting up even when the worker that asked has died since
    (its sweep's driver killed), and that late process must not run beside the trial's next
    start."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    from toolkit import rundir

    try:
        rundir.RunDirLock(Path(run_dir), TRIAL_LOCK)  # never released: held until this process exits
    except ToolkitError:  # another process of this trial holds it
        os._exit(EXIT_NOT_WANTED)
    if not _alive(requester):
        os._exit(EXIT_NOT_WANTED)
    threading.Thread(target=_stop_when_requester_dies, args=(requester,), daemon=True).start()
    descriptor = os.open(Path(run_dir) / "trial.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)
    from toolkit.cli import main

    sys.exit(main(argv))


def _stop_when_requester_dies(requester: int) -> None:
    """SIGTERM to this trial process once its Ray worker is gone (the server that forked it can
    outlive the worker, so PR_SET_PDEATHSIG alone can come late)."""
    while _alive(requester):
        time.sleep(POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def run_trial(config: dict[str, Any], sweep: Sweep) -> None:
    """Ray Tune's trainable: one toolkit process, its metric reported as it is logged."""
    from ray import tune

    from toolkit import checkpoint, rundir

    # Reusing this worker for the next trial waits this long for this function to return, which
    # for a pruned trial is its process's checkpoint on SIGTERM. Tune's default of 2 s was too
    # short on a loaded machine: the next trial then failed ("Trainable runner reuse requires
    # reset_config()") and the search waited forever for it. Tune reads it here, in the worker,
    # so it holds on a Ray that toolkit did not start too (a notebook's, a test's).
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", "300")
    run_dir = (sweep.directory / "runs" / tune.get_context().get_trial_id()).absolute()
    _wait_for_trial_process(run_dir, timeout=120)
    if rundir.read_status(run_dir).get("status") == "finished":  # done before the sweep was interrupted
        last = _last_value(run_dir, sweep.metric)
        if last is not None:
            tune.report({"objective": last[1], "step": last[0]})
        return
    if (sweep.directory / STOPPING).exists():
        raise RuntimeError(f"the sweep is stopping; toolkit sweep --resume {sweep.directory} runs this trial")
    latest = checkpoint.latest(run_dir) if run_dir.exists() else None
    reported_to = checkpoint.step_of(latest) if latest else -1  # a resumed trial reported these already
    run_dir.mkdir(parents=True, exist_ok=True)
    process = start_toolkit_process(trial_command(sweep, config, run_dir), run_dir, sweep)
    metrics, offset = run_dir / "metrics.jsonl", 0
    try:
        _record_placement(run_dir, config, process.pid)
        # tune.report blocks until the driver takes the result: a separate thread watches the driver
        threading.Thread(target=_stop_when_driver_dies, args=(process, sweep.driver), daemon=True).start()
        while True:
            finished = not process.is_alive()
            if metrics.exists():
                with open(metrics) as fh:
                    fh.seek(offset)
                    for line in fh:
                        if not line.endswith("\n"):
                            break  # half written: read it next time
                        record = json.loads(line)
                        if record["step"] >= sweep.total_steps and not finished:
                            # The last evaluation goes to Tune once the run has written its final
                            # checkpoint and status: Tune stops a trial at its last report (ASHA's
                            # max_t), and ending the trial's Ray worker then could kill the run.
                            break
                        offset += len(line.encode())
                        if sweep.metric in record and record["step"] > reported_to and record[sweep.metric] is not None:
                            tune.report({"objective": float(record[sweep.metric]), "step": record["step"]})
            if finished:
                break
            time.sleep(POLL_SECONDS)
    finally:
        if process.is_alive():  # pruned, or its driver is gone: the run checkpoints on SIGTERM
            process.terminate()
        process.join()
    if process.exitcode in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        # Stopped from outside (the sweep was interrupted): an error to Tune, so that
        # ``--resume`` restarts the trial, which then continues its run from the checkpoint.
        raise RuntimeError(f"trial stopped by a signal at its checkpoint; toolkit sweep --resume {sweep.directory} "
                           "continues it")
    if process.exitcode == EXIT_NOT_WANTED:
        raise RuntimeError(f"another process runs this trial already (an interrupted sweep's); toolkit sweep "
                           f"--resume {sweep.directory} continues it once that one has stopped")
    if process.exitcode != 0:
        raise RuntimeError(f"trial exited with {process.exitcode} ({_last_line(run_dir / 'trial.log')}); "
                           f"see {run_dir / 'trial.log'}")


def _last_line(log: Path) -> str:
    """The last non-empty line a trial process printed (its error, when it failed)."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "nothing printed"


# -- the sweep --------------------------------------------------------------------------------


def run_sweep(options: SweepOptions, resume: str | None = None) -> int:
    """Run (or continue) a sweep; returns the exit code (0, or 130/143 when stopped)."""
    if resume:
        directory = Path(resume)
        saved = directory / "sweep.json"
        if not saved.is_file():
            raise ToolkitError(f"{directory} is not a sweep directory (no sweep.json)")
        options = SweepOptions(**{**json.loads(saved.read_text()), "sweep_dir": str(directory),
                                  **({"address": options.address} if options.address else {})})
        sweep = prepare(options, resuming=True)
    else:
        sweep = prepare(options)
    import socket

    import ray
    from ray import tune

    sweep.directory.mkdir(parents=True, exist_ok=True)
    (sweep.directory / "sweep.json").write_text(json.dumps(asdict(sweep.options), indent=2))
    sweep = Sweep(**{**sweep.__dict__, "driver": (socket.gethostname(), os.getpid())})
    started_ray = _init_ray(sweep)
    trainable = tune.with_resources(tune.with_parameters(run_trial, sweep=sweep), {"cpu": sweep.threads})
    storage = str(sweep.directory.absolute())
    # Tune's results of a trial stopped before its first report (a resumed sweep) are missing,
    # and it warns so for each; toolkit's table is read from the run directories.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    try:
        if resume and tune.Tuner.can_restore(os.path.join(storage, "tune")):
            tuner = tune.Tuner.restore(os.path.join(storage, "tune"), trainable, resume_unfinished=True,
                                       resume_errored=True, param_space=sweep.param_space)
        else:
            tuner = tune.Tuner(trainable, param_space=sweep.param_space, tune_config=_tune_config(sweep),
                               run_config=tune.RunConfig(name="tune", storage_path=storage, verbose=0))
        (sweep.directory / STOPPING).unlink(missing_ok=True)
        with ForwardingStopFlag(sweep.directory) as stop:  # SIGINT / SIGTERM: every trial stops, checkpointed
            grid = tuner.fit()
        if stop():
            stop_trials(sweep.directory, signal.SIGTERM)  # each checkpoints, as toolkit train does
    finally:
        if started_ray:
            ray.shutdown()
    if stop():
        print(f"sweep stopped by {signal.Signals(stop.signal).name}; every running trial checkpointed. "
              f"Continue with: toolkit sweep --resume {sweep.directory}", file=sys.stderr)
        return 128 + stop.signal
    rows = summarise(sweep, grid)
    print_table(sweep, rows)
    return 0


class ForwardingStopFlag(StopFlag):
    """toolkit's StopFlag that also passes the first SIGINT / SIGTERM on to every running trial
    process at once, so each checkpoints before Tune ends the trials."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory

    def _handle(self, signum, frame) -> None:
        first = not self.stopped
        super()._handle(signum, frame)
        if first:
            (self.directory / STOPPING).touch()  # trials Tune starts from now on stop at once
            signal_trials(self.directory, signal.SIGTERM)


def _init_ray(sweep: Sweep) -> bool:
    """Connect to ``--address``, else start a local Ray sized to this machine; False when this
    process already had Ray running (a notebook, a test), which is then used as it is."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # A Ray worker's exit must not SIGKILL the trial process it started: that process stops
    # with a checkpoint on the SIGTERM it gets instead (PR_SET_PDEATHSIG).
    os.environ.setdefault("RAY_kill_child_processes_on_worker_exit", "0")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # toolkit's own: SIGINT/SIGTERM exit 130/143
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: Tune prints nothing, toolkit the table
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if sweep.options.address:
        ray.init(address=sweep.options.address, **kwargs)
    else:
        # "local": a new Ray, never one that happens to run here (ray start, another sweep)
        ray.init(address="local", num_cpus=max(os.cpu_count() or 1, sweep.concurrency * sweep.threads), **kwargs)
    return True


def _tune_config(sweep: Sweep) -> Any:
    from ray import tune

    if not sweep.dimensions:  # seeds and grid axes: every combination once
        return tune.TuneConfig(max_concurrent_trials=sweep.concurrency, num_samples=1, reuse_actors=True)
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    seed = 0
    if "--seed" in sweep.options.train_argv:
        seed = int(sweep.options.train_argv[sweep.options.train_argv.index("--seed") + 1])
    searcher = OptunaSearch(metric="objective", mode=sweep.options.mode, sampler=optuna.samplers.TPESampler(seed=seed))
    return tune.TuneConfig(search_alg=searcher, scheduler=_scheduler(sweep), num_samples=sweep.options.trials,
                           max_concurrent_trials=sweep.concurrency, metric="objective", mode=sweep.options.mode,
                           reuse_actors=True)  # a Ray worker per concurrent slot, not per trial


def _scheduler(sweep: Sweep) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule

    pruner = sweep.options.pruner
    if pruner == "asha":
        return ASHAScheduler(time_attr="step", max_t=sweep.total_steps, grace_period=max(1, sweep.total_steps // 4),
                             reduction_factor=2)
    if pruner == "median":
        return MedianStoppingRule(time_attr="step", grace_period=max(1, sweep.total_steps // 4), min_samples_required=2)
    return FIFOScheduler()


# -- results ----------------------------------------------------------------------------------


def stop_trials(directory: Path, signum: int) -> None:
    """Pass a stop signal on to every trial process of this machine (each checkpoints, as
    ``toolkit train`` does), and wait until they have."""
    signal_trials(directory, signum)
    wait_for_runs(directory)


def signal_trials(directory: Path, signum: int) -> None:
    """``signum`` to every running trial process of this machine, without waiting."""
    from toolkit import rundir

    for run_dir in sorted((directory / "runs").glob("*")):
        status = rundir.read_status(run_dir)
        if status.get("status") == "running" and status.get("pid"):
            try:
                os.kill(int(status["pid"]), signum)
            except (ProcessLookupError, PermissionError):
                pass


def wait_for_runs(directory: Path, timeout: float = 120.0) -> None:
    """Until no trial process holds its run directory: a pruned or stopped trial's process may
    still be writing its last checkpoint when Tune reports the trial done."""
    from toolkit import rundir

    deadline = time.monotonic() + timeout
    for run_dir in sorted((directory / "runs").glob("*")):
        rundir.wait_until_unlocked(run_dir, max(0.0, deadline - time.monotonic()))


def summarise(sweep: Sweep, grid: Any) -> list[dict[str, Any]]:
    """summary.csv, best.toml and sweep.png from the trials' run directories."""
    from toolkit import rundir

    wait_for_runs(sweep.directory)
    rows = []
    for result in grid:
        trial_id = Path(result.path).name.split("_")[-2] if result.path else "?"
        run_dir = _run_dir_of(sweep, result)
        status = rundir.read_status(run_dir).get("status", "unknown") if run_dir else "unknown"
        last = _last_value(run_dir, sweep.metric) if run_dir else None
        if status == "stopped" and last is not None and last[0] < sweep.total_steps:
            status = "pruned"
        params = {k: v for k, v in (result.config or {}).items()}
        rows.append({"trial": run_dir.name if run_dir else trial_id, **params,
                     sweep.metric: last[1] if last else None, "step": last[0] if last else None,
                     "status": status, "run_dir": str(run_dir) if run_dir else ""})
    rows.sort(key=lambda r: r["trial"])
    with open(sweep.directory / "summary.csv", "w", newline="") as fh:
        columns = list(dict.fromkeys(k for row in rows for k in row))
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    best = best_row(rows, sweep)
    if best is not None:
        write_best_toml(Path(best["run_dir"]), sweep.directory / "best.toml", sweep.metric, best[sweep.metric])
    plot_sweep(sweep, rows)
    return rows


def _run_dir_of(sweep: Sweep, result: Any) -> Path | None:
    runs = sweep.directory / "runs"
    for candidate in runs.iterdir() if runs.is_dir() else ():
        if result.path and candidate.name in Path(result.path).name:
            return candidate
    return None


def _last_value(run_dir: Path, metric: str) -> tuple[int, float] | None:
    last = None
    path = run_dir / "metrics.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get(metric) is not None:
                last = (int(record["step"]), float(record[metric]))
    return last


def best_row(rows: list[dict[str, Any]], sweep: Sweep) -> dict[str, Any] | None:
    """The finished trial with the best final metric."""
    done = [r for r in rows if r["status"] == "finished" and r[sweep.metric] is not None]
    if not done:
        return None
    pick = max if sweep.options.mode == "max" else min
    return pick(done, key=lambda r: r[sweep.metric])


def write_best_toml(run_dir: Path, out: Path, metric: str, value: float) -> None:
    """The best trial's config.toml, minus its run directory, for ``toolkit train --config``."""
    import tomllib

    import tomli_w

    document = tomllib.loads((run_dir / "config.toml").read_text())
    document.get("run", {}).pop("run_dir", None)
    header = f"# best trial of the sweep: {run_dir.name}, {metric} = {value:.6g}\n"
    out.write_text(header + tomli_w.dumps(document))


def plot_sweep(sweep: Sweep, rows: list[dict[str, Any]]) -> None:
    """sweep.png: the metric against each searched parameter, or the curves (mean over seeds per
    grid value)."""
    out = sweep.directory / "sweep.png"
    if not sweep.dimensions:
        from toolkit.plot import plot_runs

        run_dirs = [Path(r["run_dir"]) for r in rows if r["run_dir"] and (Path(r["run_dir"]) / "metrics.jsonl").exists()]
        if run_dirs:
            plot_runs(run_dirs, out, group_by=[d.name for d in sweep.grid])
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from toolkit.plot import save_figure

    fig, axes = plt.subplots(1, len(sweep.dimensions), figsize=(4.5 * len(sweep.dimensions), 3.6), squeeze=False)
    for ax, dimension in zip(axes[0], sweep.dimensions):
        for status, colour in (("finished", "tab:blue"), ("pruned", "tab:grey")):
            points = [(r[dimension.name], r[sweep.metric]) for r in rows
                      if r["status"] == status and r[sweep.metric] is not None and dimension.name in r]
            if points:
                xs, ys = zip(*points)
                xs = [str(x) for x in xs] if dimension.kind == "choice" else xs
                ax.scatter(xs, ys, c=colour, label=status, alpha=0.8)
        if dimension.log_scale:
            ax.set_xscale("log")
        ax.set_xlabel(dimension.name)
        ax.set_ylabel(sweep.metric)
        ax.legend(fontsize=8)
    save_figure(fig, out, dpi=110)


def print_table(sweep: Sweep, rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    names = sweep.varied
    table = Table(title=f"sweep {sweep.directory}")
    for column in ["trial", *names, sweep.metric, "step", "status"]:
        table.add_column(column)
    for row in rows:
        table.add_row(*[_cell(row.get(c)) for c in ["trial", *names, sweep.metric, "step", "status"]])
    console = Console(file=sys.stderr)
    console.print(table)
    best = best_row(rows, sweep)
    if best is not None:
        console.print(f"best: {best['trial']} ({sweep.metric} {best[sweep.metric]:.4g}); "
                      f"train it again with: toolkit train {sweep.options.algo} --config {sweep.directory / 'best.toml'}",
                      highlight=False)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
