"""toolkit-hdqn: registers ``hdqn`` and the goal environments; the implementations
(toolkit_hdqn.hdqn, toolkit_hdqn.envs) load on use."""

from toolkit import hookimpl
from toolkit.gym_registry import register_with_gymnasium

# gym.make("toolkit/KeyDoor-v0") for other libraries (SB3, CleanRL) once this package is imported
register_with_gymnasium([
    ("toolkit/StochasticChain-v0", "toolkit_hdqn.envs:StochasticChainEnv", {}, 100),
    ("toolkit/KeyDoor-v0", "toolkit_hdqn.envs:KeyDoorEnv", {"size": 9}, 200),
    ("toolkit/KeyDoorLarge-v0", "toolkit_hdqn.envs:KeyDoorEnv", {"size": 15}, 200),
])


@hookimpl
def register_algorithms(register):
    register("hdqn", "toolkit_hdqn.hdqn:HDQN",
             "h-DQN (Kulkarni et al. 2016): meta-controller over goals, goal-conditioned controller, critic")


@hookimpl
def register_envs(register):
    register("goals", "toolkit_hdqn.envs:resolve",
             "Goal envs for h-DQN: toolkit/StochasticChain-v0, toolkit/KeyDoor-v0, toolkit/KeyDoorLarge-v0, "
             "MontezumaRevenge-goals",
             names=["toolkit/StochasticChain-v0", "toolkit/KeyDoor-v0", "toolkit/KeyDoorLarge-v0",
                    "MontezumaRevenge-goals"])
