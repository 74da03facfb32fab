"""toolkit-hdqn: registers ``hdqn`` and the goal environments; the implementations
(toolkit_hdqn.hdqn, toolkit_hdqn.envs) load on use."""

from toolkit import hookimpl


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
