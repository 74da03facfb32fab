"""Prioritized replay's motivating experiment: the Blind Cliffwalk (Schaul et al. 2016,
Section 3.1 and Figure 1).

A Q-learner replays transitions from a fixed memory of the Blind Cliffwalk
(``toolkit/BlindCliffwalk-v0``) until it has learned the values; how many updates that takes
as the chain grows tells how well a replay order finds the few transitions that matter. The
paper compares uniform replay with an oracle (exponentially fewer updates), and its Appendix
with the proportional and rank-based variants.

The memory holds what 2^n episodes of the random policy give in expectation, each episode
once: 2^(n-k) episodes that take the wrong action at step k (k = 1..n) and the one episode that
reaches the reward, 2^(n+1) - 2 transitions in all. The successful transitions are rare, the
failures redundant, as the paper describes.

The learner is tabular Q-learning (the Blind Cliffwalk's states share nothing), one transition
per update, Q <- Q + eta * w * delta with eta = 1/4 and gamma = 1 - 1/n, Q starting at zero;
it has learned when the mean squared error of Q against the true values Q* over all
state-action pairs is below 10^-3. Prioritized samplers get |delta| back after each update.
The oracle replays the transition whose update brings Q closest to Q* (the paper's oracle
"greedily selects the transition that maximally reduces the global loss in hindsight").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REPLAYS = ("uniform", "prioritized", "rank", "oracle")


@dataclass(frozen=True)
class Memory:
    """Transitions as arrays (one row each); states are indices along the chain."""

    state: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_state: np.ndarray
    terminated: np.ndarray
    right_actions: np.ndarray
    """The moving-on action of each state (the env's layout)."""

    def __len__(self) -> int:
        return len(self.state)


def cliffwalk_memory(n: int, layout_seed: int = 0) -> Memory:
    """Every transition of 2^(n-k) episodes failing at step k, k = 1..n, and of one successful
    episode, produced by stepping ``toolkit/BlindCliffwalk-v0`` with scripted actions."""
    from toolkit.envs.toy import BlindCliffwalkEnv

    env = BlindCliffwalkEnv(n, layout_seed)
    rows: list[tuple[int, int, float, int, bool]] = []

    def episode(fail_at: int | None) -> None:
        env.reset()
        for step in range(n):
            state = env.state
            right = int(env.right_actions[state])
            action = 1 - right if step == fail_at else right
            _, reward, terminated, _, _ = env.step(action)
            rows.append((state, action, reward, env.state, terminated))
            if terminated:
                return

    for k in range(1, n + 1):
        for _ in range(2 ** (n - k)):
            episode(fail_at=k - 1)
    episode(fail_at=None)
    state, action, reward, next_state, terminated = (np.array(column) for column in zip(*rows))
    return Memory(state, action, reward.astype(np.float64), next_state, terminated, env.right_actions.copy())


def true_q(n: int, right_actions: np.ndarray, gamma: float) -> np.ndarray:
    """Q*(i, right) = gamma^(n - 1 - i) (the reward n - i steps ahead), Q*(i, wrong) = 0."""
    q = np.zeros((n, 2))
    q[np.arange(n), right_actions] = gamma ** (n - 1 - np.arange(n))
    return q


def td_errors(q: np.ndarray, memory: Memory, rows: np.ndarray, gamma: float) -> np.ndarray:
    """delta = r + gamma * max_a Q(s', a) (0 after termination) - Q(s, a), for the given rows."""
    bootstrap = np.where(memory.terminated[rows], 0.0, q[memory.next_state[rows]].max(axis=1))
    return memory.reward[rows] + gamma * bootstrap - q[memory.state[rows], memory.action[rows]]


def updates_to_learn(n: int, replay: str, seed: int, *, lr: float = 0.25, threshold: float = 1e-3,
                     max_updates: int = 10_000_000, layout_seed: int = 0, initial: str = "max") -> int | None:
    """Q-learning updates from the Blind Cliffwalk memory of n states until the mean squared
    error against Q* is below ``threshold``, replaying by ``replay`` (a registered sampler name
    or ``oracle``); None if ``max_updates`` were not enough. ``initial``: the priority
    transitions enter with, ``max`` (the sampler's default, the paper's Algorithm 1) or ``td``
    (|delta| under the initial Q, as Ape-X's actors compute it)."""
    from toolkit.replay import make_sampler

    memory = cliffwalk_memory(n, layout_seed)
    gamma = 1.0 - 1.0 / n
    target = true_q(n, memory.right_actions, gamma)
    q = np.zeros((n, 2))
    error = float(((q - target) ** 2).sum())
    limit = threshold * q.size
    if replay == "oracle":
        return _oracle_updates(q, memory, target, gamma, lr, limit, max_updates)
    rng = np.random.default_rng(seed)
    sampler = make_sampler(replay, len(memory))
    every = np.arange(len(memory))
    sampler.add(every, np.abs(td_errors(q, memory, every, gamma)) if initial == "td" else None)
    for update in range(1, max_updates + 1):
        rows, weights = sampler.sample(1, rng, 0.0)
        delta = td_errors(q, memory, rows, gamma)
        s, a = memory.state[rows[0]], memory.action[rows[0]]
        before = (q[s, a] - target[s, a]) ** 2
        q[s, a] += lr * weights[0] * delta[0]
        error += (q[s, a] - target[s, a]) ** 2 - before  # only Q(s, a) moved
        sampler.update_priorities(rows, np.abs(delta))
        if error < limit:
            return update
    return None


def _oracle_updates(q: np.ndarray, memory: Memory, target: np.ndarray, gamma: float, lr: float, limit: float,
                    max_updates: int) -> int | None:
    """The oracle: each update, of the distinct transitions in memory, the one whose update
    lowers the squared error against Q* the most."""
    keys = np.stack([memory.state, memory.action], axis=1)
    _, distinct = np.unique(keys, axis=0, return_index=True)
    s, a = memory.state[distinct], memory.action[distinct]
    for update in range(1, max_updates + 1):
        moved = q[s, a] + lr * td_errors(q, memory, distinct, gamma)
        gain = (q[s, a] - target[s, a]) ** 2 - (moved - target[s, a]) ** 2
        best = int(np.argmax(gain))
        q[s[best], a[best]] = moved[best]
        if ((q - target) ** 2).sum() < limit:
            return update
    return None
