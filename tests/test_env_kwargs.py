"""``--env-kwargs``: constructor arguments for the env, kept in the run's config so that
training, evaluation, resume and a shared run all make the same env."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toolkit.errors import ToolkitError
from toolkit.vec_env import make_vec_env, parse_env_kwargs

pytest.importorskip("toolkit_ppo")
pytest.importorskip("toolkit_hdqn")  # the bundled plugins: `make test` installs them all


@pytest.fixture
def cli(capsys):
    """`toolkit ARGS` in this process: (exit code, stdout, stderr)."""
    from toolkit.cli import main

    def run(*args) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_values_are_python_literals_or_else_the_text():
    items = ["continuous=True", "gravity=-9.5", "mode=hard", "flag=false", "size=(3, 4)", "name='x'",
             "limit=none", "steps=1e3"]
    assert parse_env_kwargs(items) == {"continuous": True, "gravity": -9.5, "mode": "hard", "flag": False,
                                       "size": (3, 4), "name": "x", "limit": None, "steps": 1000.0}


@pytest.mark.parametrize("item, message", [
    ("continuous", "expected KEY=VALUE"),
    ("1x=2", "expected KEY=VALUE"),
    ("render_mode=human", "asks for frames itself"),
    ("training=False", "makes training and evaluation envs itself"),
])
def test_malformed_items_are_refused(item, message):
    with pytest.raises(ToolkitError, match=message):
        parse_env_kwargs([item])
    with pytest.raises(ToolkitError, match="given twice"):
        parse_env_kwargs(["g=1", "g=2"])


def test_vector_envs_are_made_with_them():
    """Sutton & Barto's CartPole reward: 0 a step, -1 on failure (gymnasium's default pays 1 a step)."""
    envs = make_vec_env("CartPole-v1", 1, 0, env_kwargs={"sutton_barto_reward": True})
    rewards = []
    for _ in range(500):
        _, reward, terminated, _, _ = envs.step(np.array([0]))
        rewards.append(float(reward[0]))
        if terminated[0]:
            break
    envs.close()
    assert terminated[0] and rewards[-1] == -1.0 and set(rewards[:-1]) == {0.0}


def test_training_evaluation_resume_and_the_card_use_them(tmp_path, cli):
    run = tmp_path / "run"
    code, out, err = cli("train", "ppo", "--env", "CartPole-v1", "--env-kwargs", "sutton_barto_reward=true",
                         "--steps", 256, "--n-steps", 64, "--n-envs", 1, "--eval-every", 0, "--eval-episodes", 2,
                         "--checkpoint-every", 128, "--run-dir", run, "--no-progress")
    assert code == 0, err
    assert "made with sutton_barto_reward=True" in out + err
    returns = [json.loads(line).get("train/episode_return") for line in (run / "metrics.jsonl").open()]
    returns = [r for r in returns if r is not None]
    assert returns and set(returns) <= {-1.0, 0.0}  # the default reward would give at least 8 an episode

    code, out, err = cli("eval", run, "--episodes", 3, "--json")
    assert code == 0, err
    assert set(json.loads(out)["returns"]) <= {-1.0, 0.0}

    code, out, err = cli("resume", run, "--steps", 384)
    assert code == 0, err
    assert "made with sutton_barto_reward=True" in out + err

    folder = tmp_path / "upload"
    code, _, err = cli("push", run, "--repo", "someone/cartpole-ppo", "--episodes", 2, "--dry-run", folder)
    assert code == 0, err
    assert "made with `sutton_barto_reward=true`" in (folder / "README.md").read_text()


@pytest.mark.parametrize("env, env_kwargs, message", [
    ("CartPole-v1", "sutton_barto_rewrd=true", "unknown --env-kwargs key of CartPole-v1 'sutton_barto_rewrd'; "
                                               "did you mean: sutton_barto_reward?"),
    ("toolkit/StochasticChain-v0", "length=3", "takes no constructor arguments"),  # h-DQN's goal envs
    ("CartPole-v1", "render_mode=human", "asks for frames itself"),
])
def test_refused_before_anything_is_written(tmp_path, cli, env, env_kwargs, message):
    run = tmp_path / "run"
    code, _, err = cli("train", "ppo", "--env", env, "--env-kwargs", env_kwargs, "--run-dir", run)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not run.exists()
