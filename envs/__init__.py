"""The environment families bundled with toolkit, registered through the same hook as any
plugin's: Atari games by name, and toy envs with known optimal policies."""

from __future__ import annotations

from toolkit import hookimpl
from toolkit.gym_registry import register_with_gymnasium

# The toy envs in gymnasium's registry too (raw envs with their time limits; frame stacking
# is the toolkit resolver's job), so other libraries can gym.make them.
register_with_gymnasium([
    ("toolkit/Identity-v0", "toolkit.envs.toy:IdentityEnv", {}, 16),
    ("toolkit/IdentityContinuous-v0", "toolkit.envs.toy:IdentityContinuousEnv", {}, 16),
    ("toolkit/MultiIdentity-v0", "toolkit.envs.toy:MultiIdentityEnv", {}, 16),
    ("toolkit/BinaryIdentity-v0", "toolkit.envs.toy:BinaryIdentityEnv", {}, 16),
    ("toolkit/ImageIdentity-v0", "toolkit.envs.toy:ImageIdentityEnv", {}, 16),
    ("toolkit/Corridor-v0", "toolkit.envs.toy:CorridorEnv", {}, 20),
    ("toolkit/Frames-v0", "toolkit.envs.toy:FramesEnv", {}, None),
    ("toolkit/SlowCartPole-v0", "toolkit.envs.toy:SlowCartPoleEnv", {}, 500),
    ("toolkit/BlindCliffwalk-v0", "toolkit.envs.toy:BlindCliffwalkEnv", {}, None),
])


@hookimpl
def register_envs(register):
    register("atari", "toolkit.envs.atari:resolve",
             "Any ALE game by name (Pong, Breakout, ...) as <Game>NoFrameskip-v4 with DQN preprocessing",
             names="toolkit.envs.atari:game_names")
    register("toy", "toolkit.envs.toy:resolve",
             "Toy envs with known optimal policies: toolkit/Identity-v0, toolkit/IdentityContinuous-v0, "
             "toolkit/MultiIdentity-v0, toolkit/BinaryIdentity-v0, toolkit/ImageIdentity-v0, toolkit/Corridor-v0, "
             "toolkit/Frames-v0, "
             "toolkit/SlowCartPole-v0, toolkit/BlindCliffwalk-v0",
             names=["toolkit/Identity-v0", "toolkit/IdentityContinuous-v0", "toolkit/MultiIdentity-v0",
                    "toolkit/BinaryIdentity-v0", "toolkit/ImageIdentity-v0", "toolkit/Corridor-v0", "toolkit/Frames-v0",
                    "toolkit/SlowCartPole-v0", "toolkit/BlindCliffwalk-v0"])
    register("minatar", "toolkit.envs.minatar:resolve",
             "MinAtar's five 10x10 Atari games (Young & Tian 2019), MinAtar/Breakout-v1 ... (pip install toolkit[minatar])",
             names="toolkit.envs.minatar:env_names")
    register("rewards", "toolkit.envs.rewards:resolve",
             "gymnasium envs with a known differentiable reward (reward_function capability): Pendulum-v1",
             names=["Pendulum-v1"])


def make_vec_env(name, n_envs=1, seed=None, **options):
    """See ``toolkit.vec_env.make_vec_env``."""
    from toolkit.vec_env import make_vec_env as _make_vec_env

    return _make_vec_env(name, n_envs, seed, **options)
