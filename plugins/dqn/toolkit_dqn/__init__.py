"""toolkit-dqn: registers the ``dqn`` algorithm. The implementation, in ``toolkit_dqn.dqn``,
is imported only when it is used, so ``toolkit list`` stays instant."""

from toolkit import hookimpl


@hookimpl
def register_algorithms(register):
    register("dqn", "toolkit_dqn.dqn:DQN",
             "Deep Q-Network (Mnih et al. 2013, 2015) with Double DQN, dueling heads and n-step returns")
