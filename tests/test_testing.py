import pytest

from toolkit.random_agent import RandomAgent
from toolkit.testing import ConformanceError, check_algorithm


@pytest.mark.parametrize("env", ["toolkit/Identity-v0", "toolkit/IdentityContinuous-v0", "CartPole-v1"])
def test_random_agent_conforms(env):
    check_algorithm("random", env=env)


def test_check_catches_state_that_is_not_restored():
    class Forgetful(RandomAgent):
        def load_state_dict(self, state):
            pass  # keeps its own RNG: exploration diverges after a resume

    with pytest.raises(ConformanceError, match="state after a checkpoint round trip"):
        check_algorithm(Forgetful)


def test_check_catches_unseeded_randomness():
    import numpy as np

    class Unseeded(RandomAgent):
        def __init__(self, config, context):
            super().__init__(config, context)
            self.rng = np.random.default_rng()
            self._policy.rng = self.rng

    with pytest.raises(ConformanceError, match="same seed"):
        check_algorithm(Unseeded)


def test_check_catches_unnamespaced_metrics():
    class Chatty(RandomAgent):
        def update(self, step):
            return {"loss": 1.0}

    with pytest.raises(ConformanceError, match="not namespaced"):
        check_algorithm(Chatty)
