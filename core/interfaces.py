"""The seams between the runtime and plugins: data records and the protocols plugins satisfy.

Nothing here is a base class to inherit from; an algorithm, sampler or logger is any object
with these methods (``typing.Protocol``), checked by ``toolkit.testing.check_algorithm``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
    (``final_step_info`` picks the right one per env)."""


def final_step_info(transition: Transition, key: str) -> np.ndarray:
    """``infos[key]`` of the step each env took, with ``final_info[key]`` for the envs whose
    episode ended (their ``infos[key]`` already belongs to the next episode)."""
    infos = transition.infos
    values = np.array(infos[key], copy=True)
    final = infos.get("final_info")
    if final is not None and key in final:
        ended = np.flatnonzero(infos.get("_final_info", np.logical_or(transition.terminated, transition.truncated)))
        values[ended] = final[key][ended]
    return values


@dataclass(frozen=True, slots=True)
class Batch:
    """A sample of stored transitions, as numpy arrays (observations keep their dtype, so
    uint8 frames stay uint8 until they reach the network).

    ``discount`` is the factor in front of the bootstrap value: gamma^n for an n-step return
    that did not terminate, 0 where the episode terminated. ``indices`` are the storage slots
    (pass them back to ``ReplayBuffer.update_priorities``) and ``weights`` the importance
    weights that multiply each sample's loss (all ones for uniform sampling).
    """

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    discount: np.ndarray
    indices: np.ndarray
    weights: np.ndarray

    def to_torch(self, device: Any = "cpu") -> dict[str, Any]:
        """The batch as tensors on ``device`` (pinned and non-blocking on CUDA)."""
        import torch

        device = torch.device(device)
        pin = device.type == "cuda"
        out = {}
        for name in ("obs", "action", "reward", "next_obs", "discount", "weights"):
            tensor = torch.from_numpy(np.ascontiguousarray(getattr(self, name)))
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


@dataclass(frozen=True)
class EnvContext:
    """What an env-loop algorithm is told about its run when it is constructed."""

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
    env_id: str = ""


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

    def add(self, indices: np.ndarray) -> None:
        """These slots now hold new transitions (prioritized samplers give them max priority)."""

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
