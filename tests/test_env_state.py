import numpy as np
import pytest

from toolkit import checkpoint
from toolkit.env_state import restore, snapshot
from toolkit.vec_env import resolve_env


@pytest.mark.parametrize("name", ["CartPole-v1", "Pendulum-v1", "Pong", "Hopper-v5", "toolkit/Frames-v0"])
def test_restored_env_continues_identically(name, tmp_path):
    original, copy = resolve_env(name).make(training=True), resolve_env(name).make(training=True)
    original.reset(seed=1)
    copy.reset(seed=99)
    original.action_space.seed(0)
    actions = [original.action_space.sample() for _ in range(60)]
    for action in actions[:8]:  # short of CartPole's shortest random episode
        original.step(action)
    layers, missing = snapshot(original)
    assert missing == []
    path = checkpoint.save({"format": checkpoint.FORMAT_VERSION, "layers": layers}, tmp_path / "env.pt")
    restore(copy, checkpoint.load(path)["layers"])
    for action in actions[8:]:
        a, b = original.step(action), copy.step(action)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:4] == b[1:4]
        if a[2] or a[3]:
            break
    original.close(), copy.close()


def test_unknown_state_is_reported():
    class Opaque:
        pass

    class Env:
        def __init__(self):
            self.world = Opaque()
            self.position = np.zeros(2)

    layers, missing = snapshot(Env())
    assert missing == ["Env.world (Opaque)"] and "position" in layers[0]
