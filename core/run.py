"""The run: one training run in its run directory, from a validated ``Plan``.

``train(plan)`` builds the envs (or data) and the algorithm first, and only then creates the
run directory, so a start refused by the algorithm's constructor leaves nothing behind (a
directory this start created is removed if anything fails before training begins).
``resume(run_dir)`` validates the checkpoint against a freshly built algorithm before it
touches the run's files. A ``Run`` owns the directory, loggers, schedule and signals;
``checkpoint``, ``evaluate`` and ``flush`` are its methods, the loop is ``toolkit.loops``.

Run directory::

    config.toml  metrics.jsonl  checkpoints/step_<N>.pt  best.pt  samples/  videos/  wandb/
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit import checkpoint, rundir
from toolkit.errors import FailedAt, NonFiniteError, RunFailed, ToolkitError, describe_exception
from toolkit.interfaces import (DEFAULT_BATCH_SIZE, ArtifactLogger, BatchSizeConfig, EvaluatesHeldOut, HasReplayBuffers,
                                RunsOwnLoop)
from toolkit.planning import (Plan, construct, data_context, env_context, plan, plan_from_options, preset_mismatch,
                              preset_settings, resolve_device)
from toolkit.plugins import get_registry
from toolkit.rng import restore_rng_states, rng_states, seed_everything
from toolkit.signals import StopFlag

# Names older code and plugins import from here.
from toolkit.evaluation import evaluate_data_algorithm, save_samples  # noqa: E402,F401
from toolkit.offline import evaluate_checkpoint, find_checkpoint, load_generative, sample_checkpoint  # noqa: E402,F401
from toolkit.planning import load_algorithm, select_preset  # noqa: E402,F401

from toolkit.offline import EVAL_SEED_OFFSET  # noqa: E402  evaluation envs are seeded apart from training envs


def train(p: Plan) -> Path:
    """Start a new run; returns its directory."""
    return Run.start(p, new_run_dir(p)).execute()


def train_from_options(algo: str, options: dict[str, Any]) -> Path:
    """The Python API: ``toolkit.train("random", env="CartPole-v1", steps=1000)``."""
    return train(plan_from_options(algo, options))


def resume(run_dir: str | Path, steps: int | None = None) -> Path:
    """Continue a run from its latest checkpoint, appending to the same metrics file (and
    W&B run). ``steps`` sets a new total step budget."""
    return start_resume(run_dir, steps).execute()


def start_resume(run_dir: str | Path, steps: int | None = None, *, device: str | None = None,
                 threads: int | None = None, progress: bool | None = None) -> Run:
    """Everything ``resume`` checks and builds before training goes on. ``device``, ``threads``
    and ``progress`` (None: the run's own) say where and how the run goes on; what it trains
    stays the run's own."""
    from toolkit.config import RunConfig, coerce, field_types, option_name, read_toml

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ToolkitError(f"run directory {run_dir} does not exist")
    config_path = run_dir / "config.toml"
    if not config_path.is_file():
        raise ToolkitError(f"{run_dir} is not a toolkit run directory (no config.toml)")
    algo = read_toml(config_path).get("algorithm")
    if not isinstance(algo, str):
        raise ToolkitError(f"{config_path} does not name its algorithm")
    types = field_types(RunConfig)
    where = {"device": device, "threads": threads, "progress": progress}
    flags: dict[str, Any] = {"run_dir": str(run_dir)}
    flags.update({name: coerce(value, types[name], option_name(name)) for name, value in where.items()
                  if value is not None})
    if steps is not None:
        flags["steps"] = steps
    latest = checkpoint.latest(run_dir)
    if latest is None:  # killed (or failed) between writing config.toml and its first checkpoint
        return Run.start(plan(algo, flags, config_file=config_path), run_dir, restart=True)
    state = checkpoint.load(latest, {**checkpoint.ENTRIES, **checkpoint.RESUME_ENTRIES})
    if state.get("algorithm") != algo:
        raise ToolkitError(f"{latest} was written by algorithm '{state.get('algorithm')}', but {config_path} "
                           f"configures '{algo}'")
    p = plan(algo, flags, config_file=config_path)
    from toolkit.loggers import read_metric_lines

    read_metric_lines(run_dir)  # a corrupt metrics file is refused before anything is touched
    if p.run.steps <= state["step"]:
        finished = "the run finished: it is" if rundir.read_status(run_dir).get("status") == "finished" else "the run is"
        raise ToolkitError(f"{finished} already at step {state['step']} of {p.run.steps}; pass --steps N "
                           "with a larger total to continue")
    return Run.start(p, run_dir, state)


def new_run_dir(p: Plan) -> Path:
    """The run directory for a new run; an existing run there is an error, not overwritten."""
    return rundir.new_run_dir(p.run.run_dir, p.spec.id if p.spec else p.run.data, p.algo, p.run.seed)


@dataclass
class World:
    """What a run trains on and with: envs or data, and the algorithm."""

    algorithm: Any
    envs: Any = None
    data: Any = None
    held_out: Any = None
    make_eval_envs: Any = None
    fps: float = 30.0
    _eval_envs: Any = None

    def eval_envs(self) -> Any:
        if self._eval_envs is None:
            self._eval_envs = self.make_eval_envs()
        return self._eval_envs

    def close(self) -> None:
        for envs in (self.envs, self._eval_envs):
            if envs is not None:
                envs.close()
        if isinstance(self.algorithm, RunsOwnLoop):
            self.algorithm.close()


def build_world(p: Plan) -> World:
    """The envs (or the dataset) and the algorithm of a run; writes nothing."""
    from toolkit.vec_env import make_vec_env

    run = p.run
    if p.env is None:
        from toolkit.datasets import load_dataset

        data, _ = load_dataset(run.data, "train", run.seed, run.data_dir or None)
        batch_size = p.algo_config.batch_size if isinstance(p.algo_config, BatchSizeConfig) else DEFAULT_BATCH_SIZE
        if batch_size > len(data):
            raise ToolkitError(f"--batch-size {batch_size} is more than the {len(data):,} samples of '{run.data}'")
        algorithm = construct(p, data_context(p, data.shape[1:], len(data)))
        held_out = None
        if isinstance(algorithm, EvaluatesHeldOut):
            held_out = load_dataset(run.data, "test", run.seed, run.data_dir or None)[0]
        return World(algorithm, data=data, held_out=held_out)
    envs = make_vec_env(p.env, run.n_envs, vec_env=run.vec_env, max_episode_steps=run.max_episode_steps)
    try:
        algorithm = construct(p, env_context(p))
    except BaseException:
        envs.close()
        raise

    def make_eval_envs():
        return make_vec_env(p.env, min(run.eval_episodes, 4), training=False, max_episode_steps=run.max_episode_steps,
                            render_mode="rgb_array" if run.capture_video else None)

    from toolkit.video import video_fps

    return World(algorithm, envs=envs, make_eval_envs=make_eval_envs, fps=video_fps(p.env.family, envs.metadata))


class Run:
    """One run in its directory: loggers, the periodic schedule, signals, checkpoints."""

    def __init__(self, p: Plan, run_dir: Path, world: World, start: int) -> None:
        from toolkit.loggers import ConsoleLogger, RunLogger
        from toolkit.loops import LoopPosition

        self.plan, self.run_dir, self.world, self.start = p, run_dir, world, start
        self.algorithm = world.algorithm
        registry = get_registry()
        self.console = ConsoleLogger(run_dir, total=p.run.steps, start=start, enabled=p.run.progress)
        self.loggers = [registry.load("logger", "jsonl")(run_dir, p.config_dict)]
        if p.run.track:
            self.loggers.append(registry.load("logger", "wandb")(run_dir, p.config_dict, warn=self.console.print))
        for name in filter(None, (n.strip() for n in p.run.loggers.split(","))):
            self.loggers.append(registry.load("logger", name)(run_dir, p.config_dict))
        self.report = RunLogger(self.loggers, self.console, start=start, on_nonfinite=p.run.on_nonfinite)
        plugin_info = registry.plugin(p.entry.plugin)
        self.plugin_version = plugin_info.version if plugin_info else None
        self.position = LoopPosition()
        self.best_return = -np.inf
        self.last_eval = self.last_checkpoint = -1
        self.last_flush = start
        self.lock: rundir.RunDirLock | None = None
        self.stopped_by: int | None = None
        """The signal that stopped the run early (SIGINT, SIGTERM), None when it finished."""

    @classmethod
    def start(cls, p: Plan, run_dir: Path, resume_state: dict[str, Any] | None = None, restart: bool = False) -> Run:
        """Build everything, then create (or reopen) the run directory. A directory this call
        created is removed again if the start fails. ``restart``: the run in ``run_dir`` never
        reached its first checkpoint; start it over from step 0."""
        import torch

        if p.run.threads:
            torch.set_num_threads(p.run.threads)
        seed_everything(p.run.seed)
        world = build_world(p)
        created = not run_dir.exists()
        lock = None
        try:
            # Everything that can refuse the start happens before a file of the run changes.
            notes: list[str] = []
            if resume_state is not None:
                _load_algorithm_state(p, world, resume_state)
                obs = _restore_envs(p, world, resume_state, notes)
            else:
                obs = _reset_envs(p, world)
            _make_dir(run_dir)
            lock = rundir.RunDirLock(run_dir)  # held until the run ends; another process is refused
            start = 0
            if restart:
                _clear_unfinished_start(run_dir)
                notes.append(f"{run_dir} has no checkpoint: its start was stopped before the first one; "
                             "starting it over from step 0")
            if resume_state is None:
                _write_config(p, run_dir)
            else:
                start = int(resume_state["step"])
                if (run_dir / "config.toml").read_text() != p.toml():  # a new --steps
                    _write_config(p, run_dir)
                checkpoint.remove_temporaries(run_dir)  # left by a run killed while writing
                from toolkit.loggers import truncate_metrics

                truncate_metrics(run_dir, start)
            run = cls(p, run_dir, world, start)
            run.lock = lock
            rundir.write_status(run_dir, "running", start)
        except BaseException:
            world.close()
            if lock is not None:
                lock.release()
            if created:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        for note in notes:
            run.console.print(note)
        run._announce(resume_state is not None)
        if resume_state is not None:
            run._restore(resume_state)
        run.position.obs = obs
        return run

    def _announce(self, resuming: bool) -> None:
        p = self.plan
        if p.env:
            self.console.print(f"env: {p.run.env} -> {p.env.id} [{p.spec.protocol if p.spec else p.env.protocol}]")
        if p.preset:
            self.console.print(f"preset: {p.preset} (override any field with its flag)")
            if settings := preset_settings(p):
                self.console.print("  " + settings)
            if mismatch := preset_mismatch(p):
                self.console.print(f"  note: {mismatch}")
        self.console.print(("resuming" if resuming else "training") + f" {p.algo} in {self.run_dir} on {p.device}")

    # -- what the schedule calls -------------------------------------------------------------

    def checkpoint(self, step: int, path: Path | None = None, *, emergency: bool = False,
                   envs_lost: str | None = None) -> None:
        """Everything needed to continue exactly, written atomically (``path``: best.pt). An
        emergency checkpoint (after a failure) prunes none of the earlier ones; ``envs_lost``
        says why the envs' state cannot go in it."""
        from toolkit.env_state import snapshot_vector_env

        p = self.plan
        state = {
            "format": checkpoint.FORMAT_VERSION,
            "algorithm": p.algo,
            "plugin": p.entry.plugin,
            "plugin_version": self.plugin_version,
            "toolkit_version": _toolkit_version(),
            "step": step,
            "best_return": self.best_return,
            "config": p.sections,
            "state": self.algorithm.state_dict(),
            "rng": rng_states(),
            "logger": self.report.state_dict(),
        }
        if isinstance(self.algorithm, RunsOwnLoop):
            state["envs"] = {"missing": [f"'{p.algo}' steps its envs in its own loop"]}
        elif p.env:
            state["envs"] = {"missing": [envs_lost]} if envs_lost else \
                snapshot_vector_env(self.world.envs, self.position.obs)
        else:
            state["data"] = {"sample_shape": list(self.world.data.shape[1:]), "n_samples": len(self.world.data)}
        if p.run.save_replay and isinstance(self.algorithm, HasReplayBuffers):
            state["replay"] = {name: b.state_dict() for name, b in self.algorithm.replay_buffers().items()}
        checkpoint.save(state, path or checkpoint.step_path(self.run_dir, step))
        if path is None:
            self.last_checkpoint = step
            if not emergency:
                checkpoint.prune(self.run_dir, p.run.keep_checkpoints)

    def evaluate(self, step: int) -> None:
        """Evaluation episodes (or a generative model's samples and metrics); keeps best.pt.
        It changes no training state, so a failure in it allows an emergency checkpoint."""
        self.last_eval = step
        try:
            self._evaluate(step)
            self.report.flush()  # evaluation lines reach metrics.jsonl at once (a sweep reads them)
        except (NonFiniteError, OSError):
            raise
        except Exception as exc:
            raise FailedAt("evaluation", step) from exc

    def _evaluate(self, step: int) -> None:
        from toolkit.evaluation import evaluate

        run = self.plan.run
        if self.plan.env is None:
            evaluate_data_algorithm(self.algorithm, self.world.held_out, self.run_dir, step, self.report, self.console)
            return
        video = self.run_dir / "videos" / f"eval_step_{step:09d}.mp4" if run.capture_video else None
        result = evaluate(self.algorithm.policy(), self.world.eval_envs(), run.eval_episodes,
                          seed=run.seed + EVAL_SEED_OFFSET + step, video_path=video, fps=self.world.fps)
        self.report.write(step, {**{f"eval/{k}": v for k, v in result.items() if k != "returns"},
                                 "perf/elapsed_s": self.report.elapsed()})
        if video is not None:
            self.report.media(step, {"eval/video": str(video)})
        self.console.print(f"eval at step {step:,}: mean return {result['mean_return']:.2f} "
                           f"+/- {result['std_return']:.2f} over {result['episodes']} episodes")
        if result["mean_return"] > self.best_return:
            self.best_return = result["mean_return"]
            self.checkpoint(step, self.run_dir / "best.pt")

    def flush(self, step: int) -> None:
        """Write the averaged losses and throughput; check the current observations are finite
        (rewards are checked through episode returns, losses as they are reported: nothing on
        the per-step path)."""
        from toolkit.loops import all_finite

        self.last_flush = step
        if self.plan.env and not all_finite(self.position.obs):
            self.report.nonfinite("observation", step)
        self.report.flush_metrics(step)

    # -- the loop ----------------------------------------------------------------------------

    def execute(self) -> Path:
        """Train to the step budget or a stop signal; returns the run directory."""
        from toolkit.loops import LoopControl, Periodic, data_loop, env_loop, iterate_batches

        p, run, world = self.plan, self.plan.run, self.world
        # Order matters when several fire on one step: a checkpoint must hold that step's
        # evaluation (best return) and logged averages.
        periodic = [Periodic(run.log_every, self.flush), Periodic(run.eval_every, self.evaluate),
                    Periodic(run.checkpoint_every, self.checkpoint)]
        step, status, reason = self.start, "failed", None
        # The flag is held until the status is written: a SIGTERM that comes once every step is
        # done (a sweep stopping a trial as it reports its last evaluation) neither turns the
        # run into a stopped one nor cuts the status write short.
        with StopFlag() as stop:
            try:
                if isinstance(self.algorithm, RunsOwnLoop):
                    step = self.algorithm.run_loop(LoopControl(self.start, run.steps, self.report, periodic, stop))
                    self.report.progress(step)
                elif p.env:
                    step, _ = env_loop(self.algorithm, world.envs, self.position.obs, step=self.start,
                                       total_steps=run.steps, report=self.report, periodic=periodic, stop=stop,
                                       position=self.position)
                else:
                    batch_size = p.algo_config.batch_size if isinstance(p.algo_config, BatchSizeConfig) \
                        else DEFAULT_BATCH_SIZE
                    batches = iterate_batches(world.data, batch_size, run.seed, self.start)
                    step = data_loop(self.algorithm, batches, step=self.start, total_steps=run.steps,
                                     report=self.report, periodic=periodic, stop=stop)
                stopped = stop() and step < run.steps
                if not stopped:
                    if self.last_flush != step:
                        self.flush(step)
                    if self.last_eval != step:
                        self.evaluate(step)
                if self.last_checkpoint != step:
                    self.checkpoint(step)  # on a stop, the logger's partial averages go in it unwritten
                self.report.flush()
                if stopped:
                    status, self.stopped_by = "stopped", stop.signal
                    self.console.print(f"stopped at step {step:,}; checkpoint saved. "
                                       f"Continue with: toolkit resume {self.run_dir}")
                else:
                    status = "finished"
                    kept = [c for c in (checkpoint.latest(self.run_dir), self.run_dir / "best.pt") if c and c.exists()]
                    for logger in self.loggers:
                        if isinstance(logger, ArtifactLogger):
                            logger.log_checkpoints(kept)
                    self.console.print(f"done: {step:,} steps; results in {self.run_dir}")
            except KeyboardInterrupt:  # a second Ctrl-C: out at once, the last checkpoint stands
                status, step = "stopped", max(self.last_checkpoint, self.start)
                self.console.print(f"interrupted at once: nothing after the last checkpoint (step {step:,}) is "
                                   f"kept. Continue with: toolkit resume {self.run_dir}")
                raise
            except BaseException as exc:
                failure = self._failure(exc)
                reason = str(failure)
                raise failure from None
            finally:
                self._close(status, step, reason)
        return self.run_dir

    def _failure(self, exc: BaseException) -> BaseException:
        """The one-line ``RunFailed`` for what ended a run early, after an emergency checkpoint
        where the algorithm's state is consistent (the env or an evaluation failed)."""
        latest = checkpoint.latest(self.run_dir)
        kept = f"the last checkpoint, {latest.name}, is intact" if latest else "no checkpoint was written yet"
        resume = f"; continue with: toolkit resume {self.run_dir}"
        if isinstance(exc, RunFailed):
            return exc
        if isinstance(exc, NonFiniteError):
            since = f"the last checkpoint, {latest.name}, is from before it" if latest else "no checkpoint was written yet"
            return RunFailed(f"{exc}: the run stopped rather than train on it ({since}); --on-nonfinite warn "
                             "goes on instead")
        if isinstance(exc, FailedAt):
            cause = exc.__cause__ or exc
            if isinstance(cause, OSError):
                return self._failure(cause)
            saved = self._emergency_checkpoint(exc.step, envs_consistent=exc.what != "the env")
            return RunFailed(f"{exc}: {describe_exception(cause)}; {saved}; fix the cause, then continue with: "
                             f"toolkit resume {self.run_dir}")
        if isinstance(exc, OSError):  # a full disk, a directory gone read-only: nothing more can be written
            where = f" {exc.filename}" if exc.filename else ""
            return RunFailed(f"cannot write{where}: {exc.strerror or exc}; {kept}{resume}")
        if isinstance(exc, Exception):  # the algorithm's own code: its state may be half-updated
            trace = self.run_dir / "traceback.txt"
            try:
                import traceback

                trace.write_text("".join(traceback.format_exception(exc)))
                where = f"; traceback in {trace}"
            except OSError:
                where = ""
            return RunFailed(f"'{self.plan.algo}' failed: {describe_exception(exc)}; its state may be half-updated, so "
                             f"none is saved after the last checkpoint ({kept}){where}")
        return exc

    def _emergency_checkpoint(self, step: int, envs_consistent: bool) -> str:
        """A checkpoint of the algorithm at ``step`` (earlier ones are all kept); says what was saved."""
        if self.last_checkpoint == step:
            return f"{checkpoint.step_path(self.run_dir, step).name} holds the state at that step"
        try:
            self.checkpoint(step, emergency=True, envs_lost=None if envs_consistent else f"the env failed at step {step:,}")
        except Exception as exc:
            latest = checkpoint.latest(self.run_dir)
            return (f"no emergency checkpoint could be written ({type(exc).__name__}: {exc}); "
                    + (f"the last checkpoint, {latest.name}, is intact" if latest else "there is no checkpoint"))
        return f"saved {checkpoint.step_path(self.run_dir, step).name} with the state at that step"

    def _close(self, status: str, step: int, reason: str | None) -> None:
        """Loggers, envs, the status marker and the lock, whatever happened."""
        for close in (self.report.close, self.world.close):
            try:
                close()
            except Exception as exc:  # closing must not hide what ended the run
                self.console.print(f"warning: while closing: {type(exc).__name__}: {exc}")
        try:
            rundir.write_status(self.run_dir, status, step, **({"reason": reason} if reason else {}))
        except OSError:
            pass  # the directory is unwritable: the error already says so
        if self.lock is not None:
            self.lock.release()

    # -- resuming ----------------------------------------------------------------------------

    def _restore(self, state: dict[str, Any]) -> None:
        """The rest of a checkpoint (the algorithm and envs are already restored): RNGs, logger
        averages, best return."""
        for key, now in (("toolkit_version", _toolkit_version()), ("plugin_version", self.plugin_version)):
            if state.get(key) and now and state[key] != now:
                self.console.print(f"warning: checkpoint written with {key.replace('_', ' ')} {state[key]}, now {now}")
        if "replay" not in state and isinstance(self.algorithm, HasReplayBuffers) and self.algorithm.replay_buffers():
            self.console.print("warning: the checkpoint has no replay buffer (train with --save-replay to keep it); "
                               "the resumed run refills it from scratch")
        restore_rng_states(state["rng"])
        self.report.load_state_dict(state["logger"])
        self.best_return = float(state.get("best_return", -np.inf))


def _reset_envs(p: Plan, world: World) -> Any:
    """The first observations of a new run; an env that fails to reset refuses the start."""
    if p.env is None:
        return None
    try:
        obs, _ = world.envs.reset(seed=p.run.seed)
    except Exception as exc:
        raise ToolkitError(f"env {p.env.id} failed on reset: {describe_exception(exc)}") from None
    return obs


def _restore_envs(p: Plan, world: World, state: dict[str, Any], notes: list[str]) -> Any:
    """The envs of a checkpoint, or fresh episodes where their state could not be saved; returns
    the observations to continue from. A snapshot that does not fit the envs refuses the resume."""
    from toolkit.env_state import restore_vector_env

    if p.env is None:
        return None
    saved = state.get("envs", {})
    try:
        if isinstance(saved, dict) and "layers" in saved:
            return restore_vector_env(world.envs, saved, p.run.seed)
        missing = saved.get("missing", ["unknown"]) if isinstance(saved, dict) else ["unknown"]
        notes.append(f"warning: env state could not be saved ({'; '.join(map(str, missing))}); "
                     "resuming with fresh episodes")
        obs, _ = world.envs.reset(seed=p.run.seed + int(state["step"]))
        return obs
    except ToolkitError:
        raise
    except Exception as exc:
        raise ToolkitError(f"the checkpoint's env state does not fit {p.env.id}: {describe_exception(exc)}") from None


def _make_dir(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ToolkitError(f"cannot create the run directory {run_dir}: {exc.strerror or exc}") from None


def _clear_unfinished_start(run_dir: Path) -> None:
    """What a start that never reached its first checkpoint left: its metrics, a best.pt."""
    checkpoint.remove_temporaries(run_dir)
    for name in ("metrics.jsonl", "best.pt"):
        (run_dir / name).unlink(missing_ok=True)


def _write_config(p: Plan, run_dir: Path) -> None:
    try:
        tmp = run_dir / ".config.toml.tmp"
        tmp.write_text(p.toml())
        tmp.replace(run_dir / "config.toml")
    except OSError as exc:
        raise ToolkitError(f"cannot write {run_dir / 'config.toml'}: {exc.strerror or exc}") from None


def _load_algorithm_state(p: Plan, world: World, state: dict[str, Any]) -> None:
    """The checkpoint's algorithm state and replay buffers, before any file of the run changes;
    its random generator and logger states are tried too (and the current ones put back)."""
    from toolkit.loggers import RunLogger

    part = "algorithm state"
    try:
        world.algorithm.load_state_dict(state["state"])
        if "replay" in state and isinstance(world.algorithm, HasReplayBuffers):
            part = "replay buffer"
            for name, buffer in world.algorithm.replay_buffers().items():
                buffer.load_state_dict(state["replay"][name])
        part = "random generator state"
        current = rng_states()
        restore_rng_states(state["rng"])
        restore_rng_states(current)
        part = "logger state"
        RunLogger([], None, start=0).load_state_dict(state["logger"])
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise ToolkitError(f"the checkpoint's {part} does not fit '{p.algo}' as configured: {type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:200]}") from None


def _toolkit_version() -> str | None:
    from toolkit.plugins import _version

    return _version("toolkit")


__all__ = ["Run", "World", "build_world", "new_run_dir", "resolve_device", "resume", "start_resume", "train",
           "train_from_options"]
