"""``train()`` and ``resume()``: build the envs or data, the algorithm and the loggers, pick
the loop, and own the run directory. This is also the Python API the CLI and tests call.

Everything that can be wrong with the user's input is checked in ``plan()``, before the run
directory is created, so a bad command never writes into an existing run.

Run directory::

    config.toml  metrics.jsonl  checkpoints/step_<N>.pt  best.pt  samples/  wandb/
"""

from __future__ import annotations

import random
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit import checkpoint
from toolkit.config import (
    Preset,
    RunConfig,
    build,
    coerce,
    field_types,
    fields_of,
    read_toml,
    to_dict,
    to_toml,
    validate_names,
    values_from_toml,
)
from toolkit.errors import ToolkitError, unknown_name
from toolkit.interfaces import ResolvedEnv
from toolkit.plugins import Entry, Registry, get_registry


@dataclass
class Plan:
    """A fully validated run: which algorithm, its configs, and what it trains on."""

    algo: str
    entry: Entry
    algo_class: type
    run: RunConfig
    algo_config: Any
    preset: str | None
    env: ResolvedEnv | None

    @property
    def config_dict(self) -> dict[str, Any]:
        return {"algorithm": self.algo, "preset": self.preset, "run": to_dict(self.run), "algo": to_dict(self.algo_config)}


def load_algorithm(name: str, registry: Registry | None = None) -> tuple[Entry, type]:
    registry = registry or get_registry()
    entry = registry.get("algorithm", name)
    cls = entry.load()
    if getattr(cls, "loop", None) not in ("env", "data") or not hasattr(cls, "Config"):
        raise ToolkitError(f"plugin '{entry.plugin}': algorithm '{name}' must define Config and loop = 'env' or 'data'")
    clash = {f.name for f in fields_of(cls.Config)} & {f.name for f in fields_of(RunConfig)}
    if clash:
        raise ToolkitError(f"plugin '{entry.plugin}': algorithm '{name}' redefines run options {sorted(clash)}")
    return entry, cls


def select_preset(cls: type, name: str | None, env: ResolvedEnv | None, env_name: str) -> tuple[str | None, Preset | None]:
    """The preset named explicitly, else the first one that lists the env (or its family)."""
    presets: dict[str, Preset] = getattr(cls, "presets", {}) or {}
    if name:
        if name not in presets:
            raise unknown_name("preset", name, presets)
        return name, presets[name]
    keys = {env_name} | ({env.id, env.family} if env else set())
    for preset_name, preset in presets.items():
        if keys & set(preset.envs):
            return preset_name, preset
    return None, None


def plan(
    algo: str,
    flags: dict[str, Any] | None = None,
    *,
    config_file: str | Path | None = None,
    config_values: dict[str, Any] | None = None,
    preset: str | None = None,
    registry: Registry | None = None,
) -> Plan:
    """Resolve and validate a run: defaults < the env's preset < config file < ``flags``.

    ``flags`` maps field names (run-level or the algorithm's) to already-coerced values.
    """
    registry = registry or get_registry()
    entry, cls = load_algorithm(algo, registry)
    sections = {"run": RunConfig, "algo": cls.Config}
    owner = {f.name: s for s, c in sections.items() for f in fields_of(c)}
    layers: dict[str, dict[str, dict[str, Any]]] = {}
    if config_file is not None:
        document = read_toml(config_file)
        if document.get("algorithm", algo) != algo:
            raise ToolkitError(f"{config_file} is a config for '{document['algorithm']}', not '{algo}'")
        preset = preset or document.get("preset")
        layers["file"] = values_from_toml(document, sections, str(config_file))
    if config_values is not None:
        layers["file"] = values_from_toml(config_values, sections, "checkpoint config")
    flag_layer: dict[str, dict[str, Any]] = {"run": {}, "algo": {}}
    for key, value in (flags or {}).items():
        if key not in owner:
            raise unknown_name("option", "--" + key.replace("_", "-"), ["--" + k.replace("_", "-") for k in owner])
        flag_layer[owner[key]][key] = value
    layers["flags"] = flag_layer

    def chosen(section: str, key: str, default: Any) -> Any:
        for layer in ("flags", "file"):
            if key in layers.get(layer, {}).get(section, {}):
                return layers[layer][section][key]
        return default

    resolved = None
    env_name = chosen("run", "env", RunConfig.env)
    if cls.loop == "env":
        from toolkit.vec_env import resolve_env

        resolved = resolve_env(env_name, registry)
    else:
        env_name = chosen("run", "data", RunConfig.data)  # a data algorithm's presets name datasets
        registry.get("dataset", env_name)
    preset_name, preset_obj = select_preset(cls, preset, resolved, env_name)
    values: dict[str, dict[str, Any]] = {"run": {}, "algo": {}}
    for key, value in (preset_obj.values if preset_obj else {}).items():
        if key not in owner:
            raise ToolkitError(f"preset '{preset_name}' of '{algo}' sets unknown option '{key}'")
        values[owner[key]][key] = coerce(value, field_types(sections[owner[key]])[key], f"preset {preset_name}")
    for layer in ("file", "flags"):
        for section in values:
            values[section].update(layers.get(layer, {}).get(section, {}))
    run = build(RunConfig, values["run"])
    algo_config = build(cls.Config, values["algo"])
    _check_run(run)
    validate_names(algo_config, registry)
    return Plan(algo, entry, cls, run, algo_config, preset_name, resolved)


def _check_run(run: RunConfig) -> None:
    for name in ("steps", "n_envs", "eval_episodes"):
        if getattr(run, name) < 1:
            raise ToolkitError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(run, name)}")
    for name in ("eval_every", "checkpoint_every", "keep_checkpoints", "log_every", "max_episode_steps"):
        if getattr(run, name) < 0:
            raise ToolkitError(f"--{name.replace('_', '-')} must not be negative, got {getattr(run, name)}")


def new_run_dir(p: Plan) -> Path:
    """The run directory for a new run; an existing run there is an error, not overwritten."""
    if p.run.run_dir:
        run_dir = Path(p.run.run_dir)
        if (run_dir / "config.toml").exists() or (run_dir / "checkpoints").exists():
            raise ToolkitError(f"{run_dir} already holds a run; continue it with `toolkit resume {run_dir}` "
                               "or choose another --run-dir")
        if run_dir.exists() and not run_dir.is_dir():
            raise ToolkitError(f"--run-dir {run_dir} exists and is not a directory")
        return run_dir
    subject = (p.env.id if p.env else p.run.data).replace("/", "-")
    base = Path("runs") / f"{subject}__{p.algo}__{p.run.seed}__{int(time.time())}"
    run_dir, n = base, 1
    while run_dir.exists():
        run_dir, n = base.with_name(f"{base.name}_{n}"), n + 1
    return run_dir


def train(p: Plan) -> Path:
    """Start a new run; returns its directory."""
    run_dir = new_run_dir(p)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.toml").write_text(to_toml(p.algo, p.run, p.algo_config, p.preset))
    return execute(p, run_dir, resume_state=None)


def train_from_options(algo: str, options: dict[str, Any]) -> Path:
    """The Python API: ``toolkit.train("random", env="CartPole-v1", steps=1000)``."""
    options = dict(options)
    config_file, preset = options.pop("config", None), options.pop("preset", None)
    registry = get_registry()
    _, cls = load_algorithm(algo, registry)
    types = {**field_types(RunConfig), **field_types(cls.Config)}
    flags = {}
    for key, value in options.items():
        if key not in types:
            raise unknown_name("option", key, types)
        flags[key] = coerce(value, types[key], key)
    return train(plan(algo, flags, config_file=config_file, preset=preset, registry=registry))


def resume(run_dir: str | Path, steps: int | None = None) -> Path:
    """Continue a run from its latest checkpoint, appending to the same metrics file (and
    W&B run). ``steps`` sets a new total step budget."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ToolkitError(f"run directory {run_dir} does not exist")
    config_path = run_dir / "config.toml"
    if not config_path.is_file():
        raise ToolkitError(f"{run_dir} is not a toolkit run directory (no config.toml)")
    document = read_toml(config_path)
    algo = document.get("algorithm")
    if not isinstance(algo, str):
        raise ToolkitError(f"{config_path} does not name its algorithm")
    latest = checkpoint.latest(run_dir)
    if latest is None:
        raise ToolkitError(f"no checkpoint in {run_dir / 'checkpoints'} to resume from")
    state = checkpoint.load(latest)
    if state.get("algorithm") != algo:
        raise ToolkitError(f"{latest} was written by algorithm '{state.get('algorithm')}', but {config_path} "
                           f"configures '{algo}'")
    flags: dict[str, Any] = {"run_dir": str(run_dir)}
    if steps is not None:
        flags["steps"] = steps
    p = plan(algo, flags, config_file=config_path)
    if p.run.steps <= state["step"]:
        raise ToolkitError(f"the run is already at step {state['step']} of {p.run.steps}; pass --steps N "
                           "with a larger total to continue")
    if steps is not None:
        (run_dir / "config.toml").write_text(to_toml(p.algo, p.run, p.algo_config, p.preset))
    return execute(p, run_dir, resume_state=state)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ToolkitError("--device cuda requested but torch sees no CUDA device; use --device cpu")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ToolkitError("--device mps requested but MPS is not available; use --device cpu")
    return device


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_states() -> dict[str, Any]:
    import torch

    return {"python": random.getstate(), "numpy": np.random.get_state()[1:], "torch": torch.get_rng_state()}


def restore_rng_states(states: dict[str, Any]) -> None:
    import torch

    python_state = states["python"]
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    np.random.set_state(("MT19937", *states["numpy"]))
    torch.set_rng_state(states["torch"])


class StopFlag:
    """Set by SIGINT / SIGTERM: the loop finishes its step, the run checkpoints and exits 0.
    A second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.stopped = False
        self.previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.stopped

    def _handle(self, signum, frame) -> None:
        if self.stopped:
            raise KeyboardInterrupt
        self.stopped = True

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def execute(p: Plan, run_dir: Path, resume_state: dict[str, Any] | None) -> Path:
    """Run the loop for a planned run in ``run_dir``, from scratch or from a checkpoint."""
    from toolkit.loggers import ConsoleLogger, RunLogger, truncate_metrics
    from toolkit.loops import LoopPosition, Periodic, data_loop, env_loop, iterate_batches

    run = p.run
    registry = get_registry()
    device = resolve_device(run.device)
    start = int(resume_state["step"]) if resume_state else 0
    checkpoint.remove_temporaries(run_dir)  # left by a run killed while writing
    if resume_state:
        truncate_metrics(run_dir, start)
    seed_everything(run.seed)
    console = ConsoleLogger(run_dir, total=run.steps, start=start, enabled=run.progress)
    world = _build_world(p, device)
    algorithm = world.algorithm
    loggers = [registry.load("logger", "jsonl")(run_dir, p.config_dict)]
    if run.track:
        loggers.append(registry.load("logger", "wandb")(run_dir, p.config_dict, warn=console.print))
    for name in filter(None, (n.strip() for n in run.loggers.split(","))):
        loggers.append(registry.load("logger", name)(run_dir, p.config_dict))
    report = RunLogger(loggers, console, start=start)
    if p.env:
        console.print(f"env: {run.env} -> {p.env.id} [{p.env.protocol}]")
    if p.preset:
        console.print(f"preset: {p.preset} (override any field with its flag)")
    console.print(("resuming" if resume_state else "training") + f" {p.algo} in {run_dir} on {device}")

    position = LoopPosition()
    marks = {"best_return": -np.inf, "eval": -1, "checkpoint": -1, "flush": start}
    if resume_state:
        position.obs = _restore(p, world, report, resume_state, marks, console)
    elif p.env:
        position.obs, _ = world.envs.reset(seed=run.seed)
    plugin_info = registry.plugin(p.entry.plugin)

    def save_checkpoint(step: int, path: Path | None = None) -> None:
        state = {
            "format": checkpoint.FORMAT_VERSION,
            "algorithm": p.algo,
            "plugin": p.entry.plugin,
            "plugin_version": plugin_info.version if plugin_info else None,
            "toolkit_version": _toolkit_version(),
            "step": step,
            "best_return": marks["best_return"],
            "config": {"run": to_dict(run), "algo": to_dict(p.algo_config)},
            "state": algorithm.state_dict(),
            "rng": rng_states(),
            "logger": report.state_dict(),
        }
        if p.env:
            state["envs"] = _env_snapshot(world.envs, position.obs)
        else:
            state["data"] = {"sample_shape": list(world.data.shape[1:]), "n_samples": len(world.data)}
        if run.save_replay and hasattr(algorithm, "replay_buffers"):
            state["replay"] = {name: b.state_dict() for name, b in algorithm.replay_buffers().items()}
        checkpoint.save(state, path or checkpoint.step_path(run_dir, step))
        if path is None:
            marks["checkpoint"] = step
            checkpoint.prune(run_dir, run.keep_checkpoints)

    def run_evaluation(step: int) -> None:
        marks["eval"] = step
        if p.algo_class.loop == "data":
            evaluate_data_algorithm(algorithm, world.held_out, run_dir, step, report, console)
            return
        from toolkit.evaluation import evaluate

        video = run_dir / "videos" / f"eval_step_{step:09d}.mp4" if run.capture_video else None
        result = evaluate(algorithm.policy(), world.eval_envs(), run.eval_episodes, seed=run.seed + 1_000_003 + step,
                          video_path=video, fps=world.fps)
        report.write(step, {f"eval/{k}": v for k, v in result.items() if k != "returns"})
        if video is not None:
            report.media(step, {"eval/video": str(video)})
        console.print(f"eval at step {step:,}: mean return {result['mean_return']:.2f} "
                      f"+/- {result['std_return']:.2f} over {result['episodes']} episodes")
        if result["mean_return"] > marks["best_return"]:
            marks["best_return"] = result["mean_return"]
            save_checkpoint(step, run_dir / "best.pt")

    def flush_metrics(step: int) -> None:
        marks["flush"] = step
        report.flush_metrics(step)

    # Order matters when several fire on one step: a checkpoint must hold that step's
    # evaluation (best return) and logged averages.
    periodic = [Periodic(run.log_every, flush_metrics), Periodic(run.eval_every, run_evaluation),
                Periodic(run.checkpoint_every, save_checkpoint)]
    try:
        with StopFlag() as stop:
            if p.env:
                step, _ = env_loop(algorithm, world.envs, position.obs, step=start, total_steps=run.steps,
                                   report=report, periodic=periodic, stop=stop, position=position)
            else:
                batches = iterate_batches(world.data, getattr(p.algo_config, "batch_size", 64), run.seed, start)
                step = data_loop(algorithm, batches, step=start, total_steps=run.steps, report=report,
                                 periodic=periodic, stop=stop)
            if not stop():
                if marks["flush"] != step:
                    flush_metrics(step)
                if marks["eval"] != step:
                    run_evaluation(step)
            if marks["checkpoint"] != step:
                save_checkpoint(step)  # on a stop, the logger's partial averages go in it unwritten
            report.flush()
        if stop():
            console.print(f"stopped at step {step:,}; checkpoint saved. Continue with: toolkit resume {run_dir}")
        else:
            for logger in loggers:
                if hasattr(logger, "log_checkpoints"):
                    logger.log_checkpoints([c for c in (checkpoint.latest(run_dir), run_dir / "best.pt") if c and c.exists()])
            console.print(f"done: {step:,} steps; results in {run_dir}")
    finally:
        report.close()
        world.close()
    return run_dir


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


def evaluate_data_algorithm(algorithm: Any, held_out: np.ndarray | None, run_dir: Path, step: int, report: Any,
                            console: Any) -> None:
    """Samples as a PNG (an image grid, or a scatter plot of 2-D points over the held-out
    data), then the algorithm's own ``evaluate(held_out)`` if it has one: numbers are logged
    as ``eval/<name>``, image batches (N, C, H, W) saved as grids, point sets as scatter plots."""
    media = {"samples": str(save_samples(algorithm.sample(64 if held_out is None or held_out.ndim > 2 else 2000),
                                         run_dir / "samples" / f"step_{step:09d}.png", reference=held_out))}
    if held_out is not None:
        scores: dict[str, float] = {}
        for name, value in algorithm.evaluate(held_out).items():
            if isinstance(value, np.ndarray) and value.ndim >= 2:
                media[name] = str(save_samples(value, run_dir / "samples" / f"{name.replace('/', '_')}_step_{step:09d}.png"))
            else:
                scores[f"eval/{name}"] = float(value)
        if scores:
            report.write(step, scores)
            console.print(f"eval at step {step:,}: " + ", ".join(f"{k[5:]} {v:.4g}" for k, v in scores.items()))
    report.media(step, media)


def save_samples(samples: np.ndarray, path: Path, reference: np.ndarray | None = None) -> Path:
    """(N, C, H, W) images -> a grid PNG; (N, 2) points -> a scatter PNG (over ``reference``)."""
    from toolkit.images import make_grid, save_png

    if samples.ndim == 2:
        from toolkit.plot import scatter_points

        return scatter_points(samples, path, reference=reference if reference is not None and reference.ndim == 2 else None)
    grid = make_grid(samples)
    scale = max(1, 256 // max(grid.shape[:2]))  # 8x8 digits would give a thumbnail: enlarge small grids
    return save_png(grid.repeat(scale, axis=0).repeat(scale, axis=1), path)


def load_generative(path: str | Path) -> Any:
    """The data-loop algorithm of a generative run's checkpoint (best.pt, else the latest), on the CPU."""
    from toolkit.interfaces import DataContext

    ckpt_path = find_checkpoint(path)
    state = checkpoint.load(ckpt_path)
    p = plan(state["algorithm"], config_values=state["config"])
    if p.algo_class.loop != "data" or "data" not in state:
        raise ToolkitError(f"'{p.algo}' is not a generative trainer (or {ckpt_path} predates sampling); "
                           "use `toolkit eval` for env-loop algorithms")
    run = p.run
    context = DataContext(tuple(state["data"]["sample_shape"]), int(state["data"]["n_samples"]), run.steps, run.seed,
                          "cpu", run.data, run.data_dir)
    algorithm = p.algo_class(p.algo_config, context)
    algorithm.load_state_dict(state["state"])
    return algorithm


def sample_checkpoint(path: str | Path, n: int, out: str | Path, seed: int = 0) -> Path:
    """``toolkit sample``: ``n`` samples of a generative run's checkpoint, saved as a PNG."""
    import torch

    algorithm = load_generative(path)
    torch.manual_seed(seed)
    return save_samples(algorithm.sample(n), Path(out))


def _build_world(p: Plan, device: str) -> World:
    from toolkit.interfaces import DataContext, EnvContext
    from toolkit.vec_env import make_vec_env

    run = p.run
    if p.env is None:
        from toolkit.datasets import load_dataset

        data, _ = load_dataset(run.data, "train", run.seed, run.data_dir or None)
        context = DataContext(tuple(data.shape[1:]), len(data), run.steps, run.seed, device, run.data, run.data_dir)
        world = World(p.algo_class(p.algo_config, context), data=data)
        if hasattr(world.algorithm, "evaluate"):
            world.held_out = load_dataset(run.data, "test", run.seed, run.data_dir or None)[0]
        return world
    envs = make_vec_env(p.env, run.n_envs, vec_env=run.vec_env, max_episode_steps=run.max_episode_steps)
    context = EnvContext(envs.single_observation_space, envs.single_action_space, run.n_envs, p.env.frame_stack,
                         run.steps, run.seed, device, p.env.id)

    def make_eval_envs():
        return make_vec_env(p.env, min(run.eval_episodes, 4), training=False, max_episode_steps=run.max_episode_steps,
                            render_mode="rgb_array" if run.capture_video else None)

    # Atari frames are rendered once per agent step, i.e. every 4th frame of 60.
    fps = 15.0 if p.env.family == "atari" else float(envs.metadata.get("render_fps") or 30)
    return World(p.algo_class(p.algo_config, context), envs=envs, make_eval_envs=make_eval_envs, fps=fps)


def _env_snapshot(envs: Any, obs: np.ndarray) -> dict[str, Any]:
    from toolkit.env_state import snapshot

    if not hasattr(envs, "envs"):
        return {"missing": ["envs run in subprocesses (--vec-env async)"]}
    layers, missing = [], []
    for env in envs.envs:
        env_layers, env_missing = snapshot(env)
        layers.append(env_layers)
        missing += env_missing
    return {"missing": sorted(set(missing))} if missing else {"obs": obs, "layers": layers}


def _restore(p: Plan, world: World, report: Any, state: dict[str, Any], marks: dict[str, Any], console: Any):
    """Load a checkpoint into a freshly built run; returns the observations to continue from."""
    from toolkit.env_state import restore

    plugin_info = get_registry().plugin(p.entry.plugin)
    for key, now in (("toolkit_version", _toolkit_version()),
                     ("plugin_version", plugin_info.version if plugin_info else None)):
        if state.get(key) and now and state[key] != now:
            console.print(f"warning: checkpoint written with {key.replace('_', ' ')} {state[key]}, now {now}")
    world.algorithm.load_state_dict(state["state"])
    buffers = world.algorithm.replay_buffers() if hasattr(world.algorithm, "replay_buffers") else {}
    if "replay" in state:
        for name, buffer in buffers.items():
            buffer.load_state_dict(state["replay"][name])
    elif buffers:
        console.print("warning: the checkpoint has no replay buffer (train with --save-replay to keep it); "
                      "the resumed run refills it from scratch")
    restore_rng_states(state["rng"])
    report.load_state_dict(state["logger"])
    marks["best_return"] = float(state.get("best_return", -np.inf))
    if p.env is None:
        return None
    saved = state.get("envs", {})
    if "layers" in saved:
        world.envs.reset(seed=p.run.seed)
        for env, layers in zip(world.envs.envs, saved["layers"]):
            restore(env, layers)
        return saved["obs"]
    console.print(f"warning: env state could not be saved ({'; '.join(saved.get('missing', ['unknown']))}); "
                  "resuming with fresh episodes")
    obs, _ = world.envs.reset(seed=p.run.seed + int(state["step"]))
    return obs


def _toolkit_version() -> str | None:
    from toolkit.plugins import _version

    return _version("toolkit")


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the best (else latest) checkpoint of a run directory."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "best.pt", checkpoint.latest(path)):
            if candidate is not None and candidate.is_file():
                return candidate
        raise ToolkitError(f"no checkpoint in {path} (looked for best.pt and checkpoints/step_*.pt)")
    if not path.exists():
        raise ToolkitError(f"{path} does not exist (expected a run directory or a .pt checkpoint)")
    return path


def evaluate_checkpoint(path: str | Path, episodes: int | None = None, seed: int | None = None) -> dict[str, Any]:
    """``toolkit eval``: the same evaluation a run performs, on a saved checkpoint."""
    from toolkit.evaluation import evaluate
    from toolkit.interfaces import EnvContext
    from toolkit.vec_env import make_vec_env

    ckpt_path = find_checkpoint(path)
    state = checkpoint.load(ckpt_path)
    p = plan(state["algorithm"], config_values=state["config"])
    if p.algo_class.loop != "env":
        raise ToolkitError(f"'{p.algo}' is a generative trainer; evaluation needs an env-loop algorithm")
    run = p.run
    episodes = episodes or run.eval_episodes
    seed = run.seed + 1_000_003 if seed is None else seed
    envs = make_vec_env(p.env, min(episodes, 4), seed, training=False, max_episode_steps=run.max_episode_steps)
    try:
        context = EnvContext(envs.single_observation_space, envs.single_action_space, run.n_envs,
                             p.env.frame_stack, run.steps, run.seed, resolve_device(run.device), p.env.id)
        algorithm = p.algo_class(p.algo_config, context)
        algorithm.load_state_dict(state["state"])
        result = evaluate(algorithm.policy(), envs, episodes)
    finally:
        envs.close()
    return {"checkpoint": str(ckpt_path), "algorithm": p.algo, "env": p.env.id, "step": state["step"], **result}
