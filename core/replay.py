"""Replay storage (a ring buffer over numpy arrays) and the uniform sampler.

Storage and sampling are separate: the buffer stores observations and knows episode
boundaries; a ``Sampler`` (registered by name, ``--replay NAME``) decides which slots to draw
and with what importance weights. Prioritized samplers plug in without any change here or in
the algorithm.

Layout. Each env has its own ring of ``capacity // n_envs`` slots. A slot holds one
observation and, when an action was taken from it, that transition's action, reward and
flags; the successor observation is the next slot of the same ring. Where an episode ends,
the true final observation gets a slot of its own (with no transition), so truncated
episodes can be bootstrapped from it and nothing is stored twice.

Frame stacks. When observations are stacks of the last k frames (Atari), a slot stores only
the newest frame; a stack is rebuilt on sampling from the k-1 slots before it, clamped at the
episode's first frame. That matches gymnasium's ``FrameStackObservation(padding_type="reset")``,
which pads a new episode with copies of its first frame. 1M Atari transitions then take
about 7 GB (84*84 bytes each) instead of about 56 GB.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.interfaces import Batch, Sampler


class UniformSampler:
    """Every stored transition equally likely; importance weights are all one."""

    def __init__(self, capacity: int) -> None:
        self.valid = np.zeros(capacity, dtype=bool)
        self.count = 0
        self.high = 0  # one past the largest slot ever added: draws come from [0, high)

    def add(self, indices: np.ndarray, priorities: np.ndarray | None = None) -> None:
        new = indices[~self.valid[indices]]
        self.valid[new] = True
        self.count += len(np.unique(new))
        self.high = max(self.high, int(indices.max()) + 1)

    def remove(self, indices: np.ndarray) -> None:
        gone = np.unique(indices[self.valid[indices]])
        self.valid[gone] = False
        self.count -= len(gone)

    def sample(self, batch_size: int, rng: np.random.Generator, progress: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        if self.count == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if self.count * 4 < self.high:  # mostly empty: rejection would loop too often
            indices = rng.choice(np.flatnonzero(self.valid[: self.high]), size=batch_size)
        else:
            indices = rng.integers(0, self.high, size=batch_size)
            rejected = ~self.valid[indices]
            while rejected.any():  # a few slots per episode are not transitions; redraw those
                indices[rejected] = rng.integers(0, self.high, size=int(rejected.sum()))
                rejected = ~self.valid[indices]
        return indices, np.ones(batch_size, dtype=np.float32)

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Uniform sampling ignores priorities."""

    def state_dict(self) -> dict[str, Any]:
        return {"valid": self.valid.copy(), "count": self.count, "high": self.high}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.valid[:] = state["valid"]
        self.count = int(state["count"])
        self.high = int(state["high"])


def parse_sampler_spec(spec: str) -> tuple[str, dict[str, float]]:
    """``"prioritized:alpha=0.5,beta0=0.4"`` -> ("prioritized", {"alpha": 0.5, "beta0": 0.4})."""
    from toolkit.errors import ToolkitError

    name, _, options = spec.partition(":")
    values: dict[str, float] = {}
    for item in filter(None, (o.strip() for o in options.split(","))):
        key, eq, value = item.partition("=")
        try:
            values[key.strip()] = float(value)
        except ValueError:
            raise ToolkitError(f"sampler option '{item}' in '{spec}' must look like name=number") from None
        if not eq:
            raise ToolkitError(f"sampler option '{item}' in '{spec}' must look like name=number")
    return name, values


def make_sampler(spec: str, capacity: int, registry: Any = None) -> Sampler:
    """The sampler a ``--replay`` value names, with its options (a one-line error if unknown)."""
    import inspect

    from toolkit.errors import ToolkitError, unknown_name

    if registry is None:
        from toolkit.plugins import get_registry

        registry = get_registry()
    name, options = parse_sampler_spec(spec)
    factory = registry.load("sampler", name)
    accepted = [p for p in inspect.signature(factory).parameters if p != "capacity"]
    for key in options:
        if key not in accepted:
            raise unknown_name(f"option of sampler '{name}'", key, accepted)
    try:
        return factory(capacity, **options)
    except (TypeError, ValueError) as exc:
        raise ToolkitError(f"sampler '{spec}': {exc}") from None


@dataclass(frozen=True)
class Fragment:
    """T consecutive steps of some of a replay's envs, each frame once: what a remote actor
    sends (``make_fragment`` builds one, ``ReplayBuffer.add_fragment`` stores it). A step's
    successor is the next step's frame, except where an episode ended (the final frame is in
    ``final_frames``) and after the last step (``next_frames``)."""

    envs: np.ndarray
    """(m,) the rings (env indices) of the receiving replay these steps belong to."""
    frames: np.ndarray
    """(T, m, *frame) the newest frame of each step's observation (the whole observation when
    observations are not frame stacks)."""
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    next_frames: np.ndarray
    """(m, *frame) the newest frame of the last step's true successor."""
    final_steps: np.ndarray
    """(k, 2) (step, env column) of the episodes that ended before the last step."""
    final_frames: np.ndarray
    """(k, *frame) their final frames."""
    priorities: np.ndarray | None = None
    """(T, m) initial priorities (e.g. |TD error| computed by the actor), or None for the
    sampler's default (the largest priority so far)."""
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    """(T, m, ...) values of the replay's declared extra columns."""


def make_fragment(envs: np.ndarray, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
                  terminated: np.ndarray, truncated: np.ndarray, *, frame_stack: int = 0,
                  priorities: np.ndarray | None = None, extras: dict[str, np.ndarray] | None = None) -> Fragment:
    """A Fragment from T steps of full arrays (T, m, ...): ``next_obs`` are the true
    successors; with frame stacks only each observation's newest frame is kept."""
    frames = obs[:, :, -1] if frame_stack else obs
    successors = next_obs[:, :, -1] if frame_stack else next_obs
    ended = np.logical_or(terminated, truncated)
    final_steps = np.argwhere(ended[:-1])
    return Fragment(np.asarray(envs), frames, actions, rewards, terminated, truncated, successors[-1], final_steps,
                    successors[final_steps[:, 0], final_steps[:, 1]], priorities, dict(extras or {}))


class ReplayBuffer:
    """Transitions from n_envs envs in per-env rings, sampled through a pluggable Sampler."""

    def __init__(
        self,
        capacity: int,
        observation_space: Any,
        action_space: Any,
        *,
        n_envs: int = 1,
        frame_stack: int = 0,
        sampler: str | Sampler = "uniform",
        seed: int = 0,
        extras: dict[str, Any] | None = None,
        capacity_option: str = "--buffer-size",
    ) -> None:
        """``extras`` declares named columns stored beside each transition (name -> a gymnasium
        space giving shape and dtype): h-DQN's goal, SVG's behaviour log-probability. ``add``
        takes their values and sampled batches return them in ``Batch.extras``.
        ``capacity_option``: the option that sets ``capacity``, named when it does not fit in memory."""
        self.n_envs = n_envs
        self.slots = capacity // n_envs
        self.frame_stack = frame_stack
        if self.slots < max(frame_stack, 1) + 2:
            raise ValueError(f"replay capacity {capacity} is too small for {n_envs} envs")
        (frame_shape, frame_dtype), (action_shape, action_dtype), extra_columns = _slot_columns(
            observation_space, action_space, frame_stack, extras)
        self.slot_bytes = replay_slot_bytes(observation_space, action_space, frame_stack, extras)
        check_replay_fits(self.slots * n_envs, self.slot_bytes, capacity_option, memory_available())
        shape = (self.slots, n_envs)
        self.frames = np.zeros(shape + frame_shape, dtype=frame_dtype)
        self.actions = np.zeros(shape + action_shape, dtype=action_dtype)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.episode_end = np.zeros(shape, dtype=bool)  # the next slot holds the final observation
        self.has_transition = np.zeros(shape, dtype=bool)
        self.extras = {name: np.zeros(shape + column_shape, dtype=dtype)
                       for name, (column_shape, dtype) in extra_columns.items()}
        # Frames of the same episode before this slot, capped at frame_stack - 1.
        self.frames_before = np.zeros(shape, dtype=np.uint8)
        self.pos = np.zeros(n_envs, dtype=np.int64)
        self.next_frames_before = np.zeros(n_envs, dtype=np.uint8)
        self.added = 0
        self.filled = 0  # slots of each ring ever written; only these go into a checkpoint
        self.rng = np.random.default_rng(seed)
        if isinstance(sampler, str):
            sampler = make_sampler(sampler, self.slots * n_envs)
        self.sampler: Sampler = sampler
        # Samplers written before initial priorities existed take add(indices) only.
        self._sampler_takes_priorities = "priorities" in inspect.signature(sampler.add).parameters
        self._envs = np.arange(n_envs)

    def __len__(self) -> int:
        """Number of transitions that can be sampled."""
        return int(self.has_transition.sum())

    def _flat(self, t: np.ndarray, e: np.ndarray) -> np.ndarray:
        return t * self.n_envs + e

    def _newest_frame(self, obs: np.ndarray) -> np.ndarray:
        return obs[:, -1] if self.frame_stack else obs

    def _overwrite(self, t: np.ndarray, e: np.ndarray) -> None:
        """Forget slot t[i] of env e[i], and the transitions whose frame stacks reach back to it."""
        lost = [self._flat(t, e)[self.has_transition[t, e]]]
        # cleared first, so a slot that is both overwritten and reached back from (a fragment's
        # range) is forgotten once
        self.has_transition[t, e] = False
        for back in range(1, self.frame_stack):
            ahead = (t + back) % self.slots
            uses_t = self.has_transition[ahead, e] & (self.frames_before[ahead, e] >= back)
            self.has_transition[ahead[uses_t], e[uses_t]] = False
            lost.append(self._flat(ahead, e)[uses_t])
        lost_indices = np.concatenate(lost)
        if len(lost_indices):
            self.sampler.remove(lost_indices)

    def add(self, obs, action, reward, next_obs, terminated, truncated, extras: dict[str, Any] | None = None, *,
            envs: np.ndarray | None = None, priorities: np.ndarray | None = None) -> np.ndarray:
        """Store one vector-env step (arrays with a leading n_envs axis); ``next_obs`` is the
        true successor (the final observation where an episode ended); ``extras`` the values of
        the declared extra columns. ``envs``: the step of only these envs (the arrays' leading
        axis is then theirs); ``priorities``: initial priorities for the sampler instead of its
        default. Returns the flat slot indices written, one per env."""
        e = self._envs if envs is None else np.asarray(envs)
        return self._store(e, self._newest_frame(obs), action, reward, self._newest_frame(next_obs), terminated,
                           truncated, extras, priorities)

    def add_fragment(self, fragment: Fragment) -> np.ndarray:
        """Store consecutive steps of some envs (see ``Fragment``), exactly as adding them one
        step at a time would, but in a few array operations (a replay shard takes thousands of
        steps a second from its actors); returns the slots written, (T, m)."""
        f = fragment
        if self.extras:
            self._check_extras(f.extras)
        T, m = f.rewards.shape
        e = np.asarray(f.envs)
        ended = np.logical_or(f.terminated, f.truncated)
        # A step takes the next slot of its ring, and one more is skipped after each episode's
        # end (its final frame's slot): step k sits ends_before[k] slots further than k.
        ends_before = np.concatenate([np.zeros((1, m), dtype=np.int64), np.cumsum(ended[:-1], axis=0)])
        span = T + ends_before[-1]  # offset of the slot after the last step (its successor's frame)
        if int(span.max()) + self.frame_stack >= self.slots:  # the fragment would wrap onto itself
            return np.stack([self._store_fragment_step(f, k) for k in range(T)])
        pos = self.pos[e]
        t = (pos[None, :] + np.arange(T)[:, None] + ends_before) % self.slots
        columns = np.broadcast_to(e, (T, m))
        # forget at once everything the steps one by one would overwrite: every slot from the
        # first step's to the last successor's (and the stacks that reach back into them)
        reach = np.arange(int(span.max()) + 1)[:, None]
        inside = reach <= span[None, :]
        self._overwrite(((pos[None, :] + reach) % self.slots)[inside], np.broadcast_to(e, inside.shape)[inside])
        self.frames[t, columns] = f.frames
        self.actions[t, columns] = f.actions
        self.rewards[t, columns] = f.rewards
        self.terminated[t, columns] = f.terminated
        self.episode_end[t, columns] = ended
        self.has_transition[t, columns] = True
        for name, column in self.extras.items():
            column[t, columns] = f.extras[name]
        # frames of the same episode before each step: counted from the step after the last
        # end, or continuing the episode the previous add left open
        cap = max(self.frame_stack - 1, 0)
        steps = np.arange(T)[:, None]
        last_end = np.maximum.accumulate(np.where(ended, steps, -1), axis=0)
        previous_end = np.concatenate([np.full((1, m), -1), last_end[:-1]])
        episode_start = np.where(previous_end >= 0, previous_end + 1, -self.next_frames_before[e].astype(np.int64))
        before = np.minimum(steps - episode_start, cap)
        self.frames_before[t, columns] = before
        # the successors that get a slot of their own: final frames, and the last step's
        k, j = f.final_steps[:, 0], f.final_steps[:, 1]
        self.frames[(t[k, j] + 1) % self.slots, e[j]] = f.final_frames
        self.frames_before[(t[k, j] + 1) % self.slots, e[j]] = np.minimum(before[k, j] + 1, cap)
        after = (t[-1] + 1) % self.slots
        self.frames[after, e] = f.next_frames
        self.frames_before[after, e] = np.minimum(before[-1] + 1, cap)
        written = self._flat(t, columns)
        self._add_to_sampler(written.ravel(), None if f.priorities is None else np.asarray(f.priorities).ravel())
        self.pos[e] = np.where(ended[-1], (after + 1) % self.slots, after)
        self.next_frames_before[e] = np.where(ended[-1], 0, np.minimum(before[-1] + 1, cap))
        self.added += T * m
        self.filled = min(self.slots, max(self.filled, int(t.max()) + 2))
        return written

    def _store_fragment_step(self, f: Fragment, k: int) -> np.ndarray:
        """Step k of a fragment through the one-step path (a fragment longer than a ring)."""
        successors = f.frames[k + 1] if k + 1 < len(f.rewards) else f.next_frames
        ended_here = f.final_steps[:, 0] == k
        if ended_here.any():
            successors = successors.copy()
            successors[f.final_steps[ended_here, 1]] = f.final_frames[ended_here]
        return self._store(f.envs, f.frames[k], f.actions[k], f.rewards[k], successors, f.terminated[k],
                           f.truncated[k], {name: column[k] for name, column in f.extras.items()} if f.extras else None,
                           None if f.priorities is None else f.priorities[k])

    def _check_extras(self, extras: dict[str, Any] | None) -> None:
        if extras is None or set(extras) != set(self.extras):
            raise ValueError(f"replay add() needs the extra columns {sorted(self.extras)}, got {sorted(extras or {})}")

    def _add_to_sampler(self, written: np.ndarray, priorities: np.ndarray | None) -> None:
        if priorities is None:
            self.sampler.add(written)
        elif self._sampler_takes_priorities:
            self.sampler.add(written, priorities)
        else:
            self.sampler.add(written)
            self.sampler.update_priorities(written, np.asarray(priorities))

    def _store(self, e: np.ndarray, frame, action, reward, next_frame, terminated, truncated,
               extras: dict[str, Any] | None, priorities: np.ndarray | None) -> np.ndarray:
        t = self.pos[e]
        self._overwrite(t, e)
        self.frames[t, e] = frame
        self.frames_before[t, e] = self.next_frames_before[e]
        self.actions[t, e] = action
        if self.extras:
            self._check_extras(extras)
            for name, column in self.extras.items():
                column[t, e] = extras[name]
        self.rewards[t, e] = reward
        self.terminated[t, e] = terminated
        done = np.logical_or(terminated, truncated)
        self.episode_end[t, e] = done
        self.has_transition[t, e] = True
        # The successor goes in the next slot; if the episode continues the next add rewrites
        # that slot with the same frame and its transition.
        after = (t + 1) % self.slots
        self._overwrite(after, e)
        self.frames[after, e] = next_frame
        cap = max(self.frame_stack - 1, 0)
        self.frames_before[after, e] = np.minimum(self.next_frames_before[e] + 1, cap)
        written = self._flat(t, e)
        self._add_to_sampler(written, priorities)
        self.pos[e] = np.where(done, (t + 2) % self.slots, after)
        self.next_frames_before[e] = np.where(done, 0, np.minimum(self.next_frames_before[e] + 1, cap))
        self.added += len(e)
        self.filled = min(self.slots, max(self.filled, int(t.max()) + 2))
        return written

    def _observations(self, t: np.ndarray, e: np.ndarray) -> np.ndarray:
        if not self.frame_stack:
            return self.frames[t, e]
        back = np.arange(self.frame_stack - 1, -1, -1)
        back = np.minimum(back[None, :], self.frames_before[t, e][:, None])
        return self.frames[(t[:, None] - back) % self.slots, e[:, None]]

    def sample(self, batch_size: int, *, gamma: float = 0.99, n_step: int = 1, progress: float = 0.0) -> Batch:
        """A batch of transitions; with ``n_step`` > 1 the reward is the discounted n-step
        return, cut at episode ends and at the newest transition, and ``discount`` is gamma^m
        for the m steps taken (0 where the episode terminated)."""
        indices, weights = self.sampler.sample(batch_size, self.rng, progress)
        t, e = np.divmod(indices, self.n_envs)
        reward = self.rewards[t, e].copy()
        discount = np.full(batch_size, gamma, dtype=np.float32)
        last = t.copy()
        running = ~self.episode_end[t, e]
        for _ in range(1, n_step):
            nxt = (last + 1) % self.slots
            running &= self.has_transition[nxt, e]
            last = np.where(running, nxt, last)
            reward += np.where(running, discount * self.rewards[nxt, e], 0.0).astype(np.float32)
            discount = np.where(running, discount * gamma, discount).astype(np.float32)
            running &= ~self.episode_end[nxt, e]
        discount = np.where(self.terminated[last, e], 0.0, discount).astype(np.float32)
        return Batch(
            obs=self._observations(t, e),
            action=self.actions[t, e],
            reward=reward,
            next_obs=self._observations((last + 1) % self.slots, e),
            discount=discount,
            indices=indices,
            weights=weights.astype(np.float32, copy=False),
            extras={name: column[t, e] for name, column in self.extras.items()},
        )

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Hand new priorities (e.g. |TD error|) to the sampler; a no-op for uniform sampling."""
        self.sampler.update_priorities(indices, priorities)

    _ARRAYS = ("frames", "actions", "rewards", "terminated", "episode_end", "has_transition", "frames_before")

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue sampling exactly (arrays are views, not copies, so
        saving a large buffer does not double its memory)."""
        state = {name: getattr(self, name)[: self.filled] for name in self._ARRAYS}
        state.update(pos=self.pos.copy(), next_frames_before=self.next_frames_before.copy(), added=self.added,
                     filled=self.filled, rng=self.rng.bit_generator.state, sampler=self.sampler.state_dict())
        if self.extras:
            state["extras"] = {name: column[: self.filled] for name, column in self.extras.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.filled = int(state["filled"])
        for name in self._ARRAYS:
            getattr(self, name)[: self.filled] = state[name]
        self.pos[:] = state["pos"]
        self.next_frames_before[:] = state["next_frames_before"]
        self.added = int(state["added"])
        self.rng.bit_generator.state = state["rng"]
        self.sampler.load_state_dict(state["sampler"])
        for name, column in self.extras.items():
            column[: self.filled] = state["extras"][name]


# reward (float32), terminated, episode_end, has_transition (bool), frames_before (uint8), and
# the uniform sampler's valid flag
SLOT_BOOKKEEPING_BYTES = 4 + 3 + 1 + 1


def _nbytes(shape: tuple[int, ...], dtype: Any) -> int:
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


Column = tuple[tuple[int, ...], Any]  # a stored column's (shape per transition, dtype)


def _slot_columns(observation_space: Any, action_space: Any, frame_stack: int,
                  extras: dict[str, Any] | None) -> tuple[Column, Column, dict[str, Column]]:
    """What one slot stores: the observation (its newest frame when observations are frame
    stacks), the action, and each extra column."""
    obs_shape = tuple(observation_space.shape)
    frame = (obs_shape[1:] if frame_stack else obs_shape, observation_space.dtype)
    action = (tuple(action_space.shape or ()), _storage_dtype(action_space))
    extra_columns = {name: (tuple(space.shape or ()), _storage_dtype(space)) for name, space in (extras or {}).items()}
    return frame, action, extra_columns


def replay_slot_bytes(observation_space: Any, action_space: Any, frame_stack: int = 0,
                      extras: dict[str, Any] | None = None) -> int:
    """Bytes a ``ReplayBuffer`` with these arguments takes per transition, without building one:
    to check a replay that is built elsewhere (Ape-X's shards, in Ray actors) against memory."""
    frame, action, extra_columns = _slot_columns(observation_space, action_space, frame_stack, extras)
    return sum(_nbytes(*column) for column in (frame, action, *extra_columns.values())) + SLOT_BOOKKEEPING_BYTES


def memory_available() -> tuple[int, int] | None:
    """(bytes free now, bytes in all) for this process: RAM plus swap, or the cgroup's memory
    limit where one is set and lower (a container); None where it cannot be read."""
    try:
        import psutil

        ram, swap = psutil.virtual_memory(), psutil.swap_memory()
    except Exception:  # a platform psutil cannot read
        return None
    free, total = ram.available + swap.free, ram.total + swap.total
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            free, total = min(free, int(limit) - used), min(total, int(limit))
    except (OSError, ValueError):  # no cgroup v2 limit here
        pass
    return free, total


def check_replay_fits(capacity: int, slot_bytes: int, option: str, memory: tuple[int, int] | None) -> None:
    """Refuse a replay buffer larger than all of the machine's memory (numpy could not even
    allocate it); warn when the full buffer is larger than what is free now (it is allocated
    lazily, so the run starts and is killed for memory hours later, once the buffer fills)."""
    if memory is None:
        return
    free, total = memory
    need = capacity * slot_bytes
    if need <= free:
        return
    fits = max(int(0.8 * free) // slot_bytes, 0)
    fits = int(float(f"{fits:.2g}")) if fits >= 100 else fits  # a round number to type
    size = f"a replay buffer of {capacity:,} transitions takes {need / 1e9:,.1f} GB ({slot_bytes:,} bytes each)"
    if need > total:
        raise ToolkitError(f"{size}, more than this machine's {total / 1e9:,.1f} GB of memory: "
                           f"pass {option} {fits} or less")
    warnings.warn(f"{size} when full, and {free / 1e9:,.1f} GB is free now: the run may be killed for memory "
                  f"once the buffer fills ({option} {fits} fits)", RuntimeWarning, stacklevel=3)


def _storage_dtype(space: Any) -> Any:
    """int64 for discrete values (indexing and gather want it), the space's dtype otherwise."""
    shape = tuple(space.shape or ())
    return np.int64 if shape == () and np.issubdtype(space.dtype, np.integer) else space.dtype
