"""The seams between the runtime and plugins: data records and the protocols plugins satisfy.

Nothing here is a base class to inherit from; an algorithm, sampler or logger is any object
with these methods (``typing.Protocol``), checked by ``toolkit.testing.check_algorithm``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import gymnasium as gym


# -- records ---------------------------------------------------------------------------------


class Transition(NamedTuple):
    """One vector-env step, batched over envs (leading dimension n_envs).

    ``next_obs`` is the true successor observation: where an episode ended it is the final
    observation (not the first observation of the next episode), so a truncated episode can
    be bootstrapped from it. ``terminated`` means the MDP ended (no bootstrap); ``truncated``
    means a time limit cut the episode (bootstrap from ``next_obs``). A NamedTuple because one
    is built every env step: it is several times cheaper to create than a frozen dataclass.
    """

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    infos: dict | None = None
    """The vector env's info dict of this step. For an env whose episode ended, it holds the
    new episode's reset info, and the ended step's info is in ``infos["final_info"]``
    (``toolkit.loops.step_info`` picks the right one per env)."""


def final_step_info(transition: Transition, key: str) -> np.ndarray:
    """Deprecated alias of ``toolkit.loops.step_info`` (autoreset knowledge lives in the loops)."""
    import warnings

    from toolkit.loops import step_info

    warnings.warn("toolkit.interfaces.final_step_info is deprecated; use toolkit.loops.step_info",
                  DeprecationWarning, stacklevel=2)
    return step_info(transition, key)


@dataclass(frozen=True, slots=True)
class Batch:
    """A sample of stored transitions, as numpy arrays (observations keep their dtype, so
    uint8 frames stay uint8 until they reach the network).

    ``discount`` is the factor in front of the bootstrap value: gamma^n for an n-step return
    that did not terminate, 0 where the episode terminated. ``indices`` are the storage slots
    (pass them back to ``ReplayBuffer.update_priorities``) and ``weights`` the importance
    weights that multiply each sample's loss (all ones for uniform sampling). ``to_torch``
    includes the extra columns under their own names.
    """

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    discount: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    """The algorithm's declared extra columns (``ReplayBuffer(extras=...)``), by name."""

    def to_torch(self, device: Any = "cpu") -> dict[str, Any]:
        """The batch as tensors on ``device`` (pinned and non-blocking on CUDA)."""
        import torch

        device = torch.device(device)
        pin = device.type == "cuda"
        out = {}
        arrays = {name: getattr(self, name) for name in ("obs", "action", "reward", "next_obs", "discount", "weights")}
        for name, array in {**arrays, **self.extras}.items():
            tensor = torch.from_numpy(np.ascontiguousarray(array))
            if pin:
                tensor = tensor.pin_memory()
            out[name] = tensor.to(device, non_blocking=pin)
        return out


@dataclass(frozen=True)
class ResolvedEnv:
    """What an env name resolved to, returned by an env family's ``resolve``."""

    id: str
    """The gymnasium id that is made, e.g. "PongNoFrameskip-v4"."""
    family: str
    """The registering family ("atari", "toy", "gymnasium")."""
    make: Callable[..., "gym.Env"]
    """``make(training: bool, render_mode: str | None) -> gym.Env`` for one env instance;
    ``training=False`` gives the evaluation env (true scores, no reward clipping)."""
    protocol: str = ""
    """One line that says how the env is set up (printed at the start of a run)."""
    frame_stack: int = 0
    """Frames per observation when observations are frame stacks (first axis), else 0."""
    capabilities: Mapping[str, Any] = field(default_factory=dict)
    """What the family knows about the env beyond gymnasium's API: ``"goals"`` (a
    ``GoalInterface``) and ``"reward_function"`` (see ``EnvSpec``); each value may be a
    "module:attr" string, imported when a run needs it."""
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Constructor arguments bound into ``make`` (``--env-kwargs``; a family leaves it empty)."""


@dataclass(frozen=True)
class GoalInterface:
    """An env family's goals (h-DQN's critic): the env names its goals and reports which the
    current state satisfies in ``info["achieved_goals"]`` (a bool per goal), every step and at reset."""

    names: tuple[str, ...]
    masks: np.ndarray | None = None
    """For image observations, one (H, W) mask per goal (where on the screen the goal is), else None."""


@dataclass(frozen=True)
class EnvSpec:
    """What the planner learned about an env by resolving its name and making one instance:
    everything an algorithm may need to know about it, so no plugin resolves or builds envs itself.

    Capabilities come from the env family (``ResolvedEnv.capabilities``) or from attributes of
    the env or one of its wrappers: ``goal_names`` (+ ``goal_masks``) for a goal interface,
    ``reward_function(obs, action) -> reward`` (torch, differentiable) for a known reward."""

    id: str
    """The gymnasium id that is made."""
    family: str
    """The env family that resolved the name ("atari", "toy", "gymnasium", ...)."""
    observation_space: Any
    action_space: Any
    frame_stack: int = 0
    """Frames per observation when observations are frame stacks (first axis), else 0."""
    max_episode_steps: int | None = None
    """The episode limit in force (``--max-episode-steps`` or the env's own), None for none."""
    protocol: str = ""
    goals: GoalInterface | None = None
    """The goal interface, for envs that have one (h-DQN's goal envs, MontezumaRevenge-goals)."""
    reward_function: Callable[[Any, Any], Any] | None = None
    """A differentiable reward ``r(obs, action)`` on torch tensors, for envs where it is known
    (Pendulum-v1): model-based algorithms may use it instead of a learned reward."""
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """The constructor arguments the env is made with (``--env-kwargs``): an algorithm that
    makes envs of its own (Ape-X's actors) passes them to ``make_vec_env``."""
    structured_observation_space: Any = None
    """The env's own Dict or Tuple observation space where toolkit flattens its observations
    into vectors (``observation_space`` is then the flat Box), else None."""


@dataclass(frozen=True)
class EnvContext:
    """What an env-loop algorithm is told about its run when it is constructed (built by the
    runtime from the plan, in one place: ``toolkit.planning.env_context``)."""

    observation_space: Any
    """The observation space of one env (not the vector env)."""
    action_space: Any
    """The action space of one env."""
    n_envs: int
    """Number of envs stepped in parallel; ``act`` receives n_envs observations."""
    frame_stack: int
    """Frames per observation when observations are frame stacks, else 0 (replay uses it to
    store each frame once)."""
    total_steps: int
    """The run's env-step budget (for schedules)."""
    seed: int
    device: str
    """The torch device to put networks and tensors on ("cpu", "cuda", "mps")."""
    env_id: str = ""
    spec: EnvSpec | None = None
    """The env's full spec (episode limit, goal interface, known reward function); None only
    where a context is built by hand (old tests and plugins)."""


@dataclass(frozen=True)
class DataContext:
    """What a data-loop algorithm is told about its run when it is constructed."""

    sample_shape: tuple[int, ...]
    """Shape of one sample, e.g. (1, 28, 28) for MNIST images."""
    n_samples: int
    total_steps: int
    """Number of updates in the run."""
    seed: int
    device: str
    dataset: str = ""
    """The ``--data`` name, for metrics that depend on the dataset (mode coverage, Frechet distance)."""
    data_dir: str = ""
    """The run's ``--data-dir``, so metrics can load the dataset's labelled training split."""


# -- protocols -------------------------------------------------------------------------------


@runtime_checkable
class Policy(Protocol):
    """The deployable part of an agent: observations -> actions, deterministic, no optimizer.

    A policy with state across steps (h-DQN's current goals) may also define
    ``observe(transition)``, which evaluation calls after every step."""

    def __call__(self, obs: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class EnvAlgorithm(Protocol):
    """An algorithm trained by ``toolkit.loops.env_loop``.

    Constructed as ``Algorithm(config, context: EnvContext)``. All randomness comes from
    generators seeded by ``context.seed``, so the same seed gives the same run.
    """

    Config: ClassVar[type]
    loop: ClassVar[Literal["env"]]

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        """Actions (with exploration) for a batch of n_envs observations at env step ``step``."""

    def observe(self, transition: Transition) -> None:
        """Store what the last ``act`` led to."""

    def update(self, step: int) -> dict[str, float]:
        """Learn if it is time to (the algorithm decides); return metrics such as
        ``{"loss/td": 0.3}``, or an empty dict when nothing was learned."""

    def policy(self) -> Policy:
        """The current greedy / deterministic policy, for evaluation and export."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (networks, optimizers, RNGs, schedule
        positions) as tensors, numpy arrays, numbers and strings, except replay buffers:
        an algorithm that keeps them returns them from an optional ``replay_buffers() ->
        dict[str, ReplayBuffer]`` and the runtime saves them only with ``--save-replay``."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class DataAlgorithm(Protocol):
    """A generative trainer run by ``toolkit.loops.data_loop``.

    Constructed as ``Algorithm(config, context: DataContext)``.
    """

    Config: ClassVar[type]
    loop: ClassVar[Literal["data"]]

    def update(self, batch: np.ndarray) -> dict[str, float]:
        """One training step on a batch of samples; returns metrics."""

    def sample(self, n: int) -> np.ndarray:
        """``n`` generated samples, shaped like the dataset's (images in [0, 1]), drawn with
        torch's global RNG (so ``toolkit sample --seed`` picks them; training keeps its own)."""

    # Optional: ``evaluate(held_out: np.ndarray) -> dict[str, float | np.ndarray]``, called at
    # every evaluation with the dataset's test split: numbers are logged as ``eval/<name>``
    # (a held-out likelihood, a Frechet distance, modes covered), image batches (N, C, H, W)
    # are saved as PNG grids (reconstructions, latent traversals).

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class Sampler(Protocol):
    """Which replay slots to draw and with what importance weights.

    The replay storage tells the sampler when a slot starts or stops holding a sampleable
    transition; the sampler never sees the data itself.
    """

    def add(self, indices: np.ndarray, priorities: np.ndarray | None = None) -> None:
        """These slots now hold new transitions, with ``priorities`` as their initial priorities
        (an actor's |TD errors|, as ``update_priorities`` takes them) or, when None, the
        sampler's default (prioritized samplers: the largest priority so far). A sampler whose
        ``add`` takes only ``indices`` still works: the replay then calls ``update_priorities``
        right after it."""

    def remove(self, indices: np.ndarray) -> None:
        """These slots no longer hold sampleable transitions."""

    def sample(self, batch_size: int, rng: np.random.Generator, progress: float) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, weights)``; ``progress`` in [0, 1] is the fraction of training done
        (for annealing importance-sampling exponents)."""

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class Logger(Protocol):
    """A metric sink. ``metrics`` keys are namespaced: ``train/...``, ``eval/...``, ``loss/...``,
    ``perf/...``."""

    def log(self, step: int, metrics: dict[str, float]) -> None: ...

    def log_media(self, step: int, media: dict[str, str]) -> None:
        """``media`` maps a key to the path of a file in the run directory: a PNG image
        (sample grids) or an MP4 video (evaluation episodes)."""

    def close(self) -> None: ...


# -- optional capabilities -------------------------------------------------------------------
# Small protocols for what an algorithm, policy, config or logger *may* offer; the runtime
# tests for them with ``isinstance`` (they are runtime-checkable), never with ``hasattr``.


@runtime_checkable
class ChecksSpec(Protocol):
    """An algorithm class that checks its config against the env (or dataset) before anything
    is created: ``check(config, spec)`` raises ``ToolkitError`` (one line, with a suggestion)
    for a combination it cannot train, e.g. a discrete-action algorithm on a Box action space.
    ``spec`` is an ``EnvSpec`` for env-loop algorithms and a ``DataSpec`` for data-loop ones.
    Called during planning, so a refused start leaves nothing on disk."""

    def check(self, config: Any, spec: Any) -> None: ...


@runtime_checkable
class HasReplayBuffers(Protocol):
    """An algorithm that keeps replay buffers: the runtime saves them with ``--save-replay``."""

    def replay_buffers(self) -> dict[str, Any]: ...


@runtime_checkable
class RunsOwnLoop(Protocol):
    """An env-loop algorithm that gathers its experience itself (Ape-X's actors on Ray) instead
    of being stepped by ``toolkit.loops.env_loop``. The runtime calls ``run_loop(control)`` in
    env_loop's place and keeps everything else: the run directory, loggers, evaluation (with
    ``policy()``), checkpoints (``state_dict()``, replay buffers with ``--save-replay``), signals
    and the step schedule, which the loop drives through ``control`` (a
    ``toolkit.loops.LoopControl``: ``tick(step)`` after each advance of the env-step count).
    ``act``, ``observe`` and ``update`` are not needed. ``close()`` releases what the loop
    started (processes, actors); the runtime calls it once when the run ends, however it ends.
    The envs' state is not in checkpoints (the loop owns the envs): a resume starts new episodes."""

    def run_loop(self, control: Any) -> int:
        """Train until ``control.tick`` says to stop; returns the env-step count reached."""

    def close(self) -> None: ...


@runtime_checkable
class EvaluatesHeldOut(Protocol):
    """A data-loop algorithm with its own metrics on the dataset's test split (see
    ``DataAlgorithm``): numbers -> ``eval/<name>``, image batches -> PNG grids."""

    def evaluate(self, held_out: np.ndarray) -> dict[str, Any]: ...


@runtime_checkable
class StatefulPolicy(Protocol):
    """A policy with state across steps (h-DQN's current goals): evaluation calls
    ``observe(transition)`` after every step."""

    def __call__(self, obs: np.ndarray) -> np.ndarray: ...

    def observe(self, transition: Transition) -> None: ...


@runtime_checkable
class ExportsPolicy(Protocol):
    """An env-loop algorithm whose deterministic policy is one torch module, for ``toolkit
    export`` (ONNX, TorchScript): ``policy_module()`` maps a batch of observations, as the
    policy receives them (their env dtype, e.g. uint8 frames), to the batch of actions the
    policy would take, everything the policy does on the way (scaling, normalisation,
    clipping to the action bounds) inside it. Without it an algorithm is not exportable."""

    def policy_module(self) -> Any: ...


@runtime_checkable
class HasStochasticPolicy(Protocol):
    """An env-loop algorithm that can also act by sampling its exploring policy (epsilon-greedy,
    the Gaussian), for ``Agent.predict(obs, deterministic=False)`` and ``toolkit eval
    --stochastic``. The method may take ``seed`` (an int, or None for fresh entropy) to seed the
    samples' random generator, so that an evaluation with a seed is reproducible; one without
    it is still called, unseeded."""

    def stochastic_policy(self) -> Policy: ...


@runtime_checkable
class BatchSizeConfig(Protocol):
    """A data-loop algorithm's config that sets the batch size the data loop draws
    (``DEFAULT_BATCH_SIZE`` otherwise)."""

    batch_size: int


DEFAULT_BATCH_SIZE = 64


@runtime_checkable
class FlushingLogger(Protocol):
    """A logger that buffers: ``flush()`` is called at every metrics write and checkpoint."""

    def flush(self) -> None: ...


@runtime_checkable
class ArtifactLogger(Protocol):
    """A logger that keeps files: ``log_checkpoints(paths)`` gets the final and best checkpoints."""

    def log_checkpoints(self, paths: list[Any]) -> None: ...


@dataclass(frozen=True)
class DataSpec:
    """What the planner knows about a dataset before loading it (for ``ChecksSpec.check``)."""

    name: str
    data_dir: str = ""
