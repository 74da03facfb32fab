"""The training loops: the only code that steps envs or iterates data.

``env_loop`` is also the only place that knows gymnasium's autoreset and the
terminated/truncated distinction: it hands algorithms a ``Transition`` whose ``next_obs`` is
the true successor (the final observation where an episode ended), so an algorithm
bootstraps on truncation and not on termination without looking at ``infos``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from toolkit.errors import FailedAt
from toolkit.interfaces import Transition


@dataclass
class LoopPosition:
    """Where a loop is, readable by periodic callbacks (a checkpoint needs the current
    observations). Updated only when callbacks may fire, never on the per-step path."""

    obs: Any = None


@dataclass(frozen=True)
class Periodic:
    """Call ``fn(step)`` each time the step count crosses a multiple of ``every``."""

    every: int
    fn: Callable[[int], None]


class Reporter(Protocol):
    """Where a loop sends what happened (the runtime's ``RunLogger`` implements it)."""

    def episode(self, step: int, episode_return: float, length: int) -> None: ...

    def metrics(self, step: int, metrics: dict[str, float]) -> None: ...

    def progress(self, step: int) -> None: ...


PROGRESS_SECONDS = 0.25  # how often the progress display is refreshed
CHECK_SECONDS = 0.05  # how often stop() and the clock are consulted


class _Schedule:
    """Periodic callbacks, the progress display and ``stop()``, behind a single integer
    comparison per step on the hot path (``step >= schedule.next_check``).

    Callbacks fire exactly when the step count crosses a multiple of their interval; the
    clock and ``stop()`` are consulted about every CHECK_SECONDS, with the number of steps
    between checks adapted to the measured speed.
    """

    def __init__(self, periodic: Sequence[Periodic], step: int, stride: int, report: Reporter,
                 stop: Callable[[], bool]) -> None:
        self.periodic = [p for p in periodic if p.every > 0]
        self.next_at = [(step // p.every + 1) * p.every for p in self.periodic]
        self.stride = self.interval = stride
        self.report, self.stop = report, stop
        self.last_step, self.last_time = step, time.monotonic()
        self.next_refresh = self.last_time + PROGRESS_SECONDS
        self.stopped = stop()
        self._plan(step)

    def _plan(self, step: int) -> None:
        self.next_check = min([step + self.interval, *self.next_at])

    def check(self, step: int) -> None:
        for i, p in enumerate(self.periodic):
            if step >= self.next_at[i]:
                self.next_at[i] = (step // p.every + 1) * p.every
                p.fn(step)
        now = time.monotonic()
        if now >= self.next_refresh:
            self.report.progress(step)
            self.next_refresh = now + PROGRESS_SECONDS
        self.stopped = self.stop()
        if now > self.last_time:
            rate = (step - self.last_step) / (now - self.last_time)
            self.interval = max(self.stride, int(rate * CHECK_SECONDS) // self.stride * self.stride)
        self.last_step, self.last_time = step, now
        self._plan(step)


class LoopControl:
    """What an algorithm's own loop (``toolkit.interfaces.RunsOwnLoop``) gets from the runtime:
    the step to start from, the budget, where to report episodes and metrics, and ``tick``."""

    def __init__(self, start: int, total_steps: int, report: Reporter, periodic: Sequence[Periodic] = (),
                 stop: Callable[[], bool] = lambda: False) -> None:
        self.start, self.total_steps, self.report = start, total_steps, report
        self._schedule = _Schedule(periodic, start, 1, report, stop)

    def tick(self, step: int) -> bool:
        """Call after the env-step count grew to ``step``: fires the periodic callbacks
        (evaluation, checkpoints, metric lines) whose intervals it crossed, refreshes the
        progress display, and returns True when the loop should end (budget reached or a stop
        signal)."""
        if step >= self._schedule.next_check:
            self._schedule.check(step)
        return step >= self.total_steps or self._schedule.stopped

    @property
    def stopped(self) -> bool:
        """A stop signal (SIGINT, SIGTERM) came, as of the last check."""
        return self._schedule.stopped


def env_loop(
    algorithm: Any,
    envs: Any,
    obs: np.ndarray,
    *,
    step: int,
    total_steps: int,
    report: Reporter,
    periodic: Sequence[Periodic] = (),
    stop: Callable[[], bool] = lambda: False,
    position: LoopPosition | None = None,
) -> tuple[int, np.ndarray]:
    """Act, step the vector env, observe, update, until ``total_steps`` env steps (summed
    over envs) or ``stop()``. Returns the step count and the current observations."""
    n_envs = envs.num_envs
    position = position or LoopPosition()
    position.obs = obs
    schedule = _Schedule(periodic, step, n_envs, report, stop)
    while step < total_steps and not schedule.stopped:
        action = algorithm.act(obs, step)
        try:  # free unless it raises (Python >= 3.11)
            next_obs, reward, terminated, truncated, infos = envs.step(action)
        except Exception as exc:
            raise FailedAt("the env", step) from exc
        true_next_obs = next_obs
        if "final_obs" in infos:  # at least one env finished an episode and was reset
            true_next_obs = successor_obs(next_obs, infos)
            for i, episode_return, length in finished_episodes(infos):
                report.episode(step + n_envs, episode_return, length)
        algorithm.observe(Transition(obs, action, reward, true_next_obs, terminated, truncated, infos))
        obs = next_obs
        step += n_envs
        metrics = algorithm.update(step)
        if metrics:
            report.metrics(step, metrics)
        if step >= schedule.next_check:
            position.obs = obs
            schedule.check(step)
    position.obs = obs
    report.progress(step)
    return step, obs


def all_finite(array: Any) -> bool:
    """No NaN or inf in ``array`` (integer arrays, such as Atari frames, always pass)."""
    array = np.asarray(array)
    return array.dtype.kind not in "fc" or bool(np.isfinite(array).all())


# -- gymnasium's autoreset (SAME_STEP), known here only ----------------------------------------


def successor_obs(next_obs: np.ndarray, infos: dict) -> np.ndarray:
    """The true successor of each env's step: ``next_obs`` except where an episode ended and
    the env was reset, where it is the episode's final observation (``infos["final_obs"]``)."""
    if "final_obs" not in infos:
        return next_obs
    true_next_obs = next_obs.copy()
    for i in np.flatnonzero(infos["_final_obs"]):
        true_next_obs[i] = infos["final_obs"][i]
    return true_next_obs


def finished_episodes(infos: dict) -> list[tuple[int, float, int]]:
    """``(env index, return, length)`` of each episode that ended on this step, from the
    episode statistics (absent when an Atari life was lost but the game goes on)."""
    final_info = infos.get("final_info", {})
    if "episode" not in final_info:
        return []
    stats = final_info["episode"]
    return [(int(i), float(stats["r"][i]), int(stats["l"][i])) for i in np.flatnonzero(final_info["_episode"])]


def step_info(transition: Transition, key: str) -> np.ndarray:
    """``infos[key]`` of the step each env took: for envs whose episode ended, the ended
    step's value (``final_info``), not the reset's value of the next episode."""
    infos = transition.infos
    values = np.array(infos[key], copy=True)
    final = infos.get("final_info")
    if final is not None and key in final:
        ended = np.flatnonzero(infos.get("_final_info", np.logical_or(transition.terminated, transition.truncated)))
        values[ended] = final[key][ended]
    return values


def iterate_batches(data: np.ndarray, batch_size: int, seed: int, start: int = 0) -> Iterator[np.ndarray]:
    """Endless shuffled mini-batches from update ``start`` on. Epoch e is the permutation
    drawn from the seed (seed, e); the last partial batch of an epoch is dropped so every
    batch has ``batch_size`` samples. A resumed run passes its step as ``start`` and sees
    exactly the batches an uninterrupted run would have."""
    if len(data) < batch_size:
        raise ValueError(f"dataset has {len(data)} samples, fewer than the batch size {batch_size}")
    per_epoch = len(data) // batch_size
    epoch, offset = divmod(start, per_epoch)
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(len(data))
        for i in range(offset, per_epoch):
            yield data[order[i * batch_size : (i + 1) * batch_size]]
        epoch, offset = epoch + 1, 0


def data_loop(
    algorithm: Any,
    batches: Iterator[np.ndarray],
    *,
    step: int,
    total_steps: int,
    report: Reporter,
    periodic: Sequence[Periodic] = (),
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """``algorithm.update(batch)`` until ``total_steps`` updates or ``stop()``; periodic
    callbacks (samples, evaluation, checkpoints) fire on the update count."""
    schedule = _Schedule(periodic, step, 1, report, stop)
    while step < total_steps and not schedule.stopped:
        metrics = algorithm.update(next(batches))
        step += 1
        if metrics:
            report.metrics(step, metrics)
        if step >= schedule.next_check:
            schedule.check(step)
    report.progress(step)
    return step
