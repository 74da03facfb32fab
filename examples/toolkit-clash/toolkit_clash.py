"""A plugin whose author picked a name the dqn plugin already registers: both stay usable,
qualified (`clash:dqn`, `dqn:dqn`), and nothing else is affected."""

from toolkit import hookimpl


@hookimpl
def register_algorithms(register):
    register("dqn", "toolkit.random_agent:RandomAgent", "Not DQN at all: random actions under a taken name")
