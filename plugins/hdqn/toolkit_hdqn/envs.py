"""Goal environments for h-DQN (Kulkarni et al. 2016), and the goal interface they share.

A goal environment names its goals and acts as the critic that says which are reached:

* ``env.unwrapped.goal_names`` — the goal space, a list of names (goal g is its index);
* ``info["achieved_goals"]`` — after ``reset`` and every ``step``, a bool array over goals:
  which goals the current state satisfies (the critic's verdict; h-DQN's intrinsic reward is
  1 when the pursued goal is in it);
* optionally ``env.unwrapped.goal_masks`` — a (n_goals, H, W) uint8 array, one image-sized
  mask per goal, which image controllers receive as an extra input channel (as in the
  paper's Montezuma agent).

The envs:

* ``toolkit/StochasticChain-v0`` — the paper's stochastic decision process: states s1..s6,
  start in s2; "left" moves left, "right" moves right with probability 0.5 (else left); s1 is
  terminal and pays 1 if s6 was visited in the episode, else 0.01. The observation is the
  current state one-hot (it does not say whether s6 was visited). Goals: the six states.
* ``toolkit/KeyDoor-v0`` — a gridworld with sparse, delayed reward: pick up the key, open
  the door in the wall (only with the key), then reach the exit behind it; reward 1 at the
  exit, 0 otherwise. Goals: key, door, exit (the agent stands on the object). 9x9, 200 steps;
  ``toolkit/KeyDoorLarge-v0`` is the same in a 15x15 room, in the same 200 steps.
* ``MontezumaRevenge-goals`` — Montezuma's Revenge with the DQN preprocessing and a goal
  oracle read from the ALE's RAM (player position and room), with hand-defined regions of
  the first room as goals (see ``MONTEZUMA_GOALS``).
"""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from toolkit.interfaces import ResolvedEnv


class StochasticChainEnv(gym.Env):
    """Kulkarni et al. (2016), Section 4.1: six states, delayed reward for visiting s6 first."""

    goal_names = [f"s{i}" for i in range(1, 7)]
    LEFT, RIGHT = 0, 1

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, (6,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self._state, self._visited_end = 1, False  # 0-based: s2

    def _observe(self) -> tuple[np.ndarray, dict]:
        obs = np.zeros(6, dtype=np.float32)
        obs[self._state] = 1.0
        return obs, {"achieved_goals": obs.astype(bool)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._state, self._visited_end = 1, False
        return self._observe()

    def step(self, action):
        if int(action) == self.RIGHT and self.np_random.random() < 0.5:
            self._state = min(self._state + 1, 5)
        else:
            self._state -= 1
        self._visited_end |= self._state == 5
        terminated = self._state == 0
        reward = (1.0 if self._visited_end else 0.01) if terminated else 0.0
        obs, info = self._observe()
        return obs, reward, terminated, False, info


class KeyDoorEnv(gym.Env):
    """A ``size`` x ``size`` room split by a vertical wall with one door. The agent starts in
    the bottom-left corner, the key lies in the top-left corner, the exit in the far right
    corner behind the wall. The door opens when the agent steps into it holding the key.
    Observation: the agent's cell one-hot, then has-key and door-open flags."""

    goal_names = ["key", "door", "exit"]
    MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])  # up, down, left, right (row, col)

    def __init__(self, size: int = 9) -> None:
        self.size = size
        self.wall_col = size // 2
        self.key = (0, 0)
        self.door = (size // 2, self.wall_col)
        self.exit = (size - 1, size - 1)
        self.observation_space = spaces.Box(0.0, 1.0, (size * size + 2,), dtype=np.float32)
        self.action_space = spaces.Discrete(4)
        self._agent, self._has_key, self._door_open = (size - 1, 0), False, False

    def _observe(self) -> tuple[np.ndarray, dict]:
        obs = np.zeros(self.size * self.size + 2, dtype=np.float32)
        obs[self._agent[0] * self.size + self._agent[1]] = 1.0
        obs[-2], obs[-1] = float(self._has_key), float(self._door_open)
        achieved = np.array([self._agent == self.key, self._agent == self.door, self._agent == self.exit])
        return obs, {"achieved_goals": achieved}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._agent, self._has_key, self._door_open = (self.size - 1, 0), False, False
        return self._observe()

    def step(self, action):
        row, col = np.clip(np.array(self._agent) + self.MOVES[int(action)], 0, self.size - 1)
        target = (int(row), int(col))
        blocked = target[1] == self.wall_col and (target != self.door or not (self._door_open or self._has_key))
        if not blocked:
            self._agent = target
            self._door_open |= target == self.door
        self._has_key |= self._agent == self.key
        terminated = self._agent == self.exit and self._door_open
        obs, info = self._observe()
        return obs, float(terminated), bool(terminated), False, info


# -- Montezuma's Revenge with a RAM goal oracle ------------------------------------------------

# Regions of the first room in the ALE's RAM coordinates (x = ram[42], y = ram[43]; y grows
# upwards; the player starts at (77, 235) on the top platform, above the middle ladder):
# (name, x_min, x_max, y_min, y_max). Measured on MontezumaRevengeNoFrameskip-v4 by walking the
# room (DOWN from the start reaches (77, 192) at the foot of the middle ladder, where the
# conveyor carries the player left) and from the positions a random policy visits. The key
# is not among them: its pick-up position was not measured.
MONTEZUMA_GOALS = [
    ("middle ladder bottom", 68, 82, 190, 194),
    ("middle platform left", 36, 48, 190, 198),
    ("middle platform right", 136, 148, 190, 202),
    ("lower floor left", 24, 40, 146, 152),
    ("lower floor right", 120, 136, 146, 152),
]
RAM_X, RAM_Y, RAM_ROOM = 42, 43, 3
# A player jumping off the top platform falls through "lower floor left" and dies there. Read
# from the RAM of 15k random steps: ram[88] counts the frames of a jump or fall (0 on the
# ground or a ladder), ram[55] counts down the death animation from 12 and ram[53] is 22
# exactly while the dead sprite shows (also after the last life's countdown). Goals count
# only for a live player on the ground; without this, 65 of the 109 random visits to
# "lower floor left" were deadly falls, which a controller learns as the way to get there.
RAM_AIRBORNE, RAM_DYING, RAM_SPRITE, DEAD_SPRITE = 88, 55, 53, 22


def _screen_mask(x_min: int, x_max: int, y_min: int, y_max: int, size: int = 84) -> np.ndarray:
    """Where the player's sprite is on the 84x84 preprocessed screen while it stands in the
    region. Calibrated on the raw 210x160 screen: the sprite's columns are x - 1 .. x + 6 and
    its rows 310 - y .. 323 - y."""
    mask = np.zeros((size, size), dtype=np.uint8)
    rows = slice(int((310 - y_max) * size / 210), int(np.ceil((323 - y_min + 1) * size / 210)))
    cols = slice(int((x_min - 1) * size / 160), int(np.ceil((x_max + 7) * size / 160)))
    mask[rows, cols] = 1
    return mask


def montezuma_goals_reached(ram: np.ndarray) -> np.ndarray:
    """The critic: which goal regions a live player stands in, from the ALE's RAM."""
    x, y, room = int(ram[RAM_X]), int(ram[RAM_Y]), int(ram[RAM_ROOM])
    standing = ram[RAM_AIRBORNE] == 0 and ram[RAM_DYING] == 0 and ram[RAM_SPRITE] != DEAD_SPRITE
    return np.array([standing and room == 1 and x0 <= x <= x1 and y0 <= y <= y1
                     for _, x0, x1, y0, y1 in MONTEZUMA_GOALS])


class MontezumaGoals(gym.Wrapper):
    """Adds the goal interface to a preprocessed MontezumaRevenge env: a goal is reached when
    the live player stands in its region of the first room (room 1)."""

    goal_names = [name for name, *_ in MONTEZUMA_GOALS]

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.goal_masks = np.stack([_screen_mask(*box) for _, *box in MONTEZUMA_GOALS])

    def _achieved(self) -> np.ndarray:
        return montezuma_goals_reached(self.env.unwrapped.ale.getRAM())

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "achieved_goals": self._achieved()}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "achieved_goals": self._achieved()}


# -- registration ------------------------------------------------------------------------------

# env id -> (class, constructor arguments, time limit)
TOY_GOAL_ENVS = {
    "toolkit/StochasticChain-v0": (StochasticChainEnv, {}, 100),
    "toolkit/KeyDoor-v0": (KeyDoorEnv, {"size": 9}, 200),
    # a random walk finishes the 9x9 room in ~3% of its 200-step episodes, the 15x15 one in none
    # of 2,000 (in 500 steps: ~1%, often enough for flat DQN to learn from)
    "toolkit/KeyDoorLarge-v0": (KeyDoorEnv, {"size": 15}, 200),
}
MONTEZUMA = "MontezumaRevenge-goals"


def _make_toy(env_id: str, training: bool = True, render_mode: str | None = None) -> gym.Env:
    env_class, kwargs, max_steps = TOY_GOAL_ENVS[env_id]
    return gym.wrappers.TimeLimit(env_class(**kwargs), max_steps)


def _make_montezuma(training: bool = True, render_mode: str | None = None) -> gym.Env:
    from toolkit.envs.atari import make

    return MontezumaGoals(make("MontezumaRevengeNoFrameskip-v4", training=training, render_mode=render_mode))


def resolve(name: str) -> ResolvedEnv | None:
    if name in TOY_GOAL_ENVS:
        limit = TOY_GOAL_ENVS[name][-1]
        return ResolvedEnv(name, "goals", functools.partial(_make_toy, name),
                           f"goal env (h-DQN), time limit {limit} steps")
    if name.lower() == MONTEZUMA.lower():
        return ResolvedEnv(MONTEZUMA, "goals", _make_montezuma,
                           "MontezumaRevengeNoFrameskip-v4 with DQN preprocessing and a RAM goal oracle (room 1)", 4)
    return None


def goal_names_of(env: gym.Env) -> list[str]:
    """The goal space of a goal env, or a clear error for an env without one."""
    names = getattr(env.unwrapped, "goal_names", None) or getattr(env, "goal_names", None)
    if names is None:
        for wrapper in _wrappers(env):
            names = getattr(wrapper, "goal_names", None)
            if names:
                break
    if not names:
        raise ValueError("h-DQN needs a goal environment (one with goal_names and info['achieved_goals']), "
                         "such as toolkit/StochasticChain-v0, toolkit/KeyDoor-v0, toolkit/KeyDoorLarge-v0 "
                         "or MontezumaRevenge-goals")
    return list(names)


def goal_masks_of(env: gym.Env) -> np.ndarray | None:
    for wrapper in _wrappers(env):
        masks = getattr(wrapper, "goal_masks", None)
        if masks is not None:
            return masks
    return None


def _wrappers(env: gym.Env):
    while True:
        yield env
        if not hasattr(env, "env"):
            return
        env = env.env
