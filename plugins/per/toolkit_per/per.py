"""Prioritized experience replay (Schaul et al. 2016, "Prioritized Experience Replay").

Transition i is drawn with probability P(i) = p_i^alpha / sum_k p_k^alpha (eq. 1), where
  proportional:  p_i = |delta_i| + eps
  rank-based:    p_i = 1 / rank(i), ranks by |delta_i|, largest first.
The bias is corrected by importance weights w_i = (N * P(i))^(-beta), divided by the largest
weight in the batch (Algorithm 1), with beta annealed linearly from beta0 to 1 over training.
New transitions enter with the largest priority seen so far, so each is replayed at least
once soon. Both samplers draw one sample from each of k segments of equal probability
(stratified sampling), which is exact in aggregate and lowers the variance of a batch.

The paper advises lowering the learning rate (it divides DQN's by 4) because prioritized
batches have larger TD errors; the samplers cannot do it for you.

These are ``toolkit.interfaces.Sampler``s: the core replay storage tells them when slots
gain or lose a transition and they never see the data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class SumTree:
    """A B-ary sum tree over numpy arrays: leaf updates and prefix-sum searches for a whole
    batch at once, with no per-item Python loop.

    A search starts with one ``searchsorted`` over the cumulative sums of the top level (the
    first with at most ``search_width`` nodes), then descends the levels below it, choosing
    each child from the prefix sums of its siblings (a small matrix product). With B = 32
    and 1M leaves that is one global search over ~1k nodes and two descents: a few dozen
    numpy calls per batch, whatever its size.
    """

    def __init__(self, capacity: int, branching: int = 32, search_width: int = 4096) -> None:
        self.branching = branching
        # levels[0] are the leaves; each next level sums blocks of `branching` nodes. Levels
        # stop at the first one narrow enough to search globally: nothing above it is needed.
        self.levels: list[np.ndarray] = []
        size = max(capacity, 1)
        while True:
            padded = -(-size // branching) * branching
            self.levels.append(np.zeros(padded))
            if padded <= search_width or size == 1:
                break
            size = padded // branching
        self.capacity = capacity
        self._exclusive = np.triu(np.ones((branching, branching)), 1)  # x @ _exclusive = sums left of each x
        self._ones = np.ones(branching)  # x @ _ones = sums of x (faster than .sum(axis=1) here)

    @property
    def total(self) -> float:
        return float(self.levels[-1].sum())

    @property
    def leaves(self) -> np.ndarray:
        return self.levels[0][: self.capacity]

    def update(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaves and refresh their ancestors. For an index repeated in one call the last
        value wins (numpy assigns a 1-D fancy index in order; a test pins this down)."""
        nodes = np.asarray(indices)
        self.levels[0][nodes] = values
        for lower, upper in zip(self.levels, self.levels[1:]):
            nodes = nodes // self.branching
            upper[nodes] = lower.reshape(-1, self.branching)[nodes] @ self._ones

    def rebuild(self) -> None:
        for lower, upper in zip(self.levels, self.levels[1:]):
            upper[: len(lower) // self.branching] = lower.reshape(-1, self.branching).sum(axis=1)

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """For each prefix sum in [0, total), the leaf whose cumulative interval contains it."""
        return self._descend(np.array(prefix, dtype=np.float64), np.cumsum(self.levels[-1]))

    def sample_stratified(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
        """One leaf from each of ``n`` equal segments of the total mass, drawn uniformly
        within its segment; returns the leaves, their values and the total."""
        cumulative = np.cumsum(self.levels[-1])
        total = float(cumulative[-1])
        prefix = (self._rows(n) + rng.random(n)) * (total / n)
        leaves = self._descend(prefix, cumulative)
        return leaves, self.levels[0][leaves], total

    def _descend(self, prefix: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
        """``cumulative`` is the cumulative sum of the top level; ``prefix`` is consumed."""
        top = self.levels[-1]
        # prefix < total, so the search below stays inside the level
        np.minimum(prefix, math.nextafter(float(cumulative[-1]), 0.0), out=prefix)
        node = np.searchsorted(cumulative, prefix, side="right")
        prefix -= cumulative[node] - top[node]
        rows = self._rows(len(prefix))
        for level in self.levels[-2::-1]:
            children = level.reshape(-1, self.branching)[node]
            before = children @ self._exclusive  # the mass left of each child
            # the child is the last one whose left mass is <= prefix; zero-mass children
            # share their left mass with the next child, so they are never chosen
            child = (before[:, 1:] <= prefix[:, None]).sum(axis=1)
            prefix -= before[rows, child]
            node = node * self.branching + child
        if self.levels[0][node].min() <= 0:  # float rounding ran past the last positive leaf of a subtree
            empty = self.levels[0][node] <= 0
            node[empty] = self._last_positive_before(node[empty])
        return node

    def _rows(self, n: int) -> np.ndarray:
        if len(getattr(self, "_row_cache", ())) != n:
            self._row_cache = np.arange(n)
        return self._row_cache

    def _last_positive_before(self, leaves: np.ndarray) -> np.ndarray:
        positive = np.flatnonzero(self.levels[0] > 0)
        return positive[np.maximum(np.searchsorted(positive, leaves, side="right") - 1, 0)]


def annealed_beta(beta0: float, progress: float) -> float:
    """beta0 -> 1 linearly over training (progress in [0, 1])."""
    return beta0 + (1.0 - beta0) * min(max(progress, 0.0), 1.0)


def importance_weights(probabilities: np.ndarray, n: int, beta: float) -> np.ndarray:
    """w_i = (N * P(i))^(-beta) / max_j w_j over the batch (Schaul et al. 2016, Algorithm 1).

    N cancels in the normalisation and the largest weight belongs to the least likely
    sample, so this is computed as (P(i) / min_j P(j))^(-beta); ``n`` is kept in the
    signature to match the formula."""
    return ((probabilities / probabilities.min()) ** -beta).astype(np.float32)


class ProportionalSampler:
    """P(i) proportional to (|delta_i| + eps)^alpha, through a sum tree."""

    def __init__(self, capacity: int, alpha: float = 0.6, beta0: float = 0.4, eps: float = 1e-6) -> None:
        if not 0 <= alpha <= 1 or not 0 <= beta0 <= 1:  # also false for NaN
            raise ValueError("alpha and beta0 must lie in [0, 1]")
        if not 0 < eps < float("inf"):
            raise ValueError(f"eps must be a finite number > 0, got {eps}")
        self.alpha, self.beta0, self.eps = alpha, beta0, eps
        self.tree = SumTree(capacity)
        self.max_priority = 1.0  # of |delta| + eps, before the exponent
        self.count = 0

    def add(self, indices: np.ndarray, priorities: np.ndarray | None = None) -> None:
        """New transitions: p_i = the largest p so far, or |delta_i| + eps for given initial
        priorities (Ape-X's actors compute them)."""
        self.count += int(np.count_nonzero(self.tree.leaves[indices] == 0))
        if priorities is None:
            self.tree.update(indices, np.full(len(indices), self.max_priority ** self.alpha))
            return
        priorities = np.abs(np.asarray(priorities, dtype=np.float64)) + self.eps
        self.tree.update(indices, priorities**self.alpha)
        self.max_priority = max(self.max_priority, float(priorities.max(initial=0.0)))

    def remove(self, indices: np.ndarray) -> None:
        self.count -= int(np.count_nonzero(self.tree.leaves[np.unique(indices)] > 0))
        self.tree.update(indices, np.zeros(len(indices)))

    def sample(self, batch_size: int, rng: np.random.Generator, progress: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        if self.count <= 0:
            raise ValueError("cannot sample from an empty replay buffer")
        indices, masses, total = self.tree.sample_stratified(batch_size, rng)
        return indices, importance_weights(masses / total, self.count, annealed_beta(self.beta0, progress))

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """p_i = |delta_i| + eps, stored as p_i^alpha."""
        priorities = np.abs(priorities) + self.eps
        if self.tree.levels[0][indices].min() <= 0:  # a slot overwritten since it was sampled stays empty
            live = self.tree.levels[0][indices] > 0
            indices, priorities = indices[live], priorities[live]
            if not len(priorities):
                return
        self.tree.update(indices, priorities**self.alpha)
        largest = priorities.max()
        if largest > self.max_priority:
            self.max_priority = float(largest)

    def state_dict(self) -> dict[str, Any]:
        return {"leaves": self.tree.leaves.copy(), "max_priority": self.max_priority, "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tree.leaves[:] = state["leaves"]
        self.tree.rebuild()
        self.max_priority = float(state["max_priority"])
        self.count = int(state["count"])


class RankSampler:
    """P(i) proportional to rank(i)^(-alpha), ranks by |delta| (largest first).

    As in the paper, the ranking is refreshed periodically rather than on every update: a
    full re-sort happens once the number of changes since the last one (new, removed or
    re-prioritised transitions) reaches ``resort_fraction`` of the stored transitions, or
    when a draw lands on a transition removed since. Transitions added since the last sort
    rank above all others, newest first (they carry the maximum priority). Sampling is
    stratified inverse-CDF sampling over ranks: one draw from each of k segments of equal
    probability.
    """

    def __init__(self, capacity: int, alpha: float = 0.7, beta0: float = 0.5, resort_fraction: float = 0.01) -> None:
        if not 0 <= alpha <= 1 or not 0 <= beta0 <= 1:  # also false for NaN
            raise ValueError("alpha and beta0 must lie in [0, 1]")
        if not 0 < resort_fraction <= 1:
            raise ValueError(f"resort_fraction must lie in (0, 1], got {resort_fraction}")
        self.alpha, self.beta0, self.resort_fraction = alpha, beta0, resort_fraction
        self.priority = np.zeros(capacity)  # |delta| per slot
        self.valid = np.zeros(capacity, dtype=bool)
        self.count = 0
        self.order = np.zeros(0, dtype=np.int64)  # valid slots by priority at the last sort
        self.fresh = np.zeros(0, dtype=np.int64)  # slots added since, oldest first
        self.is_fresh = np.zeros(capacity, dtype=bool)
        self.max_priority = 1.0
        self.changes = 0
        # mass[r] = sum_{k=1}^{r+1} k^-alpha: the unnormalised CDF over ranks for any N
        self.mass = np.cumsum(np.arange(1, capacity + 1, dtype=np.float64) ** -alpha)

    def add(self, indices: np.ndarray, priorities: np.ndarray | None = None) -> None:
        """New transitions rank above all others until the next sort, which places them by
        their priority: the largest so far, or |delta_i| for given initial priorities."""
        indices, first = np.unique(indices, return_index=True)
        in_order = np.argsort(first)  # the order they came in: a fragment of many steps ranks its newest first
        indices, first = indices[in_order], first[in_order]
        self.count += int(np.count_nonzero(~self.valid[indices]))
        self.valid[indices] = True
        if priorities is None:
            self.priority[indices] = self.max_priority
        else:
            given = np.abs(np.asarray(priorities, dtype=np.float64))[first]
            self.priority[indices] = given
            self.max_priority = max(self.max_priority, float(given.max(initial=0.0)))
        self.fresh = np.concatenate([self.fresh, indices[~self.is_fresh[indices]]])
        self.is_fresh[indices] = True
        self.changes += len(indices)

    def remove(self, indices: np.ndarray) -> None:
        indices = np.unique(indices)
        self.count -= int(np.count_nonzero(self.valid[indices]))
        self.valid[indices] = False
        self.changes += len(indices)

    def _resort(self) -> None:
        slots = np.flatnonzero(self.valid)
        self.order = slots[np.argsort(-self.priority[slots], kind="stable")]
        self.fresh = np.zeros(0, dtype=np.int64)
        self.is_fresh[:] = False
        self.changes = 0

    def _slots_at(self, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Slots at 0-based ranks, and which of them are stale (removed or re-added since)."""
        n_fresh = len(self.fresh)
        in_fresh = ranks < n_fresh
        slots = np.where(in_fresh, self.fresh[np.clip(n_fresh - 1 - ranks, 0, max(n_fresh - 1, 0))] if n_fresh else 0,
                         self.order[np.clip(ranks - n_fresh, 0, max(len(self.order) - 1, 0))] if len(self.order) else 0)
        stale = ~self.valid[slots] | (~in_fresh & self.is_fresh[slots])
        return slots, stale

    def sample(self, batch_size: int, rng: np.random.Generator, progress: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        n = self.count
        if n == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if self.changes >= max(1.0, self.resort_fraction * n):
            self._resort()
        total = self.mass[n - 1]
        targets = (np.arange(batch_size) + rng.random(batch_size)) * (total / batch_size)
        ranks = np.minimum(np.searchsorted(self.mass[:n], targets, side="right"), n - 1)
        slots, stale = self._slots_at(ranks)
        if stale.any():
            self._resort()
            slots, _ = self._slots_at(ranks)
        probabilities = (ranks + 1.0) ** -self.alpha / total
        return slots, importance_weights(probabilities, n, annealed_beta(self.beta0, progress))

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        priorities = np.abs(np.asarray(priorities, dtype=np.float64))
        live = self.valid[indices]
        self.priority[indices[live]] = priorities[live]
        self.max_priority = max(self.max_priority, float(priorities.max(initial=0.0)))
        self.changes += int(live.sum())

    def state_dict(self) -> dict[str, Any]:
        # the last sort and what came since are state too: a resumed run samples from the same
        # (possibly stale) order as an uninterrupted one
        return {"priority": self.priority.copy(), "valid": self.valid.copy(), "max_priority": self.max_priority,
                "order": self.order.copy(), "fresh": self.fresh.copy(), "changes": self.changes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.priority[:] = state["priority"]
        self.valid[:] = state["valid"]
        self.count = int(self.valid.sum())
        self.max_priority = float(state["max_priority"])
        if "order" not in state:  # a checkpoint from before the sort was saved
            self._resort()
            return
        self.order, self.fresh = np.array(state["order"], dtype=np.int64), np.array(state["fresh"], dtype=np.int64)
        self.is_fresh[:] = False
        self.is_fresh[self.fresh] = True
        self.changes = int(state["changes"])
