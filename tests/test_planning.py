"""Planning refuses bad starts before anything is written; gymnasium interop both ways."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import ClassVar

import pytest

from conftest import run_cli
from toolkit import hookimpl
from toolkit.cli import main
from toolkit.plugins import get_registry

@dataclass(frozen=True)
class BrokenConfig:
    size: int = 3
    """A size."""


class BrokenInConstructor:
    """An algorithm whose constructor fails the way plugin code fails: an exception deep in numpy."""

    Config: ClassVar[type] = BrokenConfig
    loop: ClassVar[str] = "env"

    def __init__(self, config, context):
        import numpy as np

        np.zeros(3).reshape(config.size, 2)


class BrokenPlugin:
    @hookimpl
    def register_algorithms(self, register):
        register("broken", BrokenInConstructor, "Fails while being built (test)")


def test_constructor_exception_is_one_line_naming_the_plugin_and_no_run_dir(tmp_path, capsys):
    get_registry().add_plugin("broken-plugin", BrokenPlugin(), "0", builtin=False)
    run_dir = tmp_path / "run"
    code = main(["train", "broken", "--env", "CartPole-v1", "--run-dir", str(run_dir), "--no-progress"])
    line = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in line
    assert line.startswith("error: plugin 'broken-plugin': algorithm 'broken' could not be built: ValueError")
    assert f"{os.path.basename(__file__)}:" in line  # the plugin's own file and line, not numpy's
    assert not run_dir.exists()


def test_existing_empty_run_dir_is_kept_when_a_start_fails(tmp_path, capsys):
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    assert main(["train", "svg0", "--env", "CartPole-v1", "--run-dir", str(run_dir)]) == 2
    assert run_dir.is_dir()  # not created by this invocation: left alone


ENV_PACKAGE = '''
import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Lights(gym.Env):
    """Two lights; the reward is 1 for switching on the one that is off."""

    def __init__(self):
        self.observation_space = spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.off = int(self.np_random.integers(2))
        return self._obs(), {}

    def _obs(self):
        obs = np.ones(2, np.float32)
        obs[self.off] = 0.0
        return obs

    def step(self, action):
        reward = float(int(action) == self.off)
        self.off = int(self.np_random.integers(2))
        return self._obs(), reward, False, False, {}


gym.register("Lights-v0", entry_point=Lights, max_episode_steps=10)
'''


def test_dqn_trains_on_an_env_from_a_package_toolkit_does_not_ship(tmp_path):
    (tmp_path / "lights_envs.py").write_text(textwrap.dedent(ENV_PACKAGE))
    run_dir = tmp_path / "run"
    result = run_cli("train", "dqn", "--env", "lights_envs:Lights-v0", "--steps", "400", "--learning-starts", "100",
                     "--eval-every", "0", "--eval-episodes", "2", "--run-dir", str(run_dir), "--no-progress",
                     env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    assert result.returncode == 0, result.stderr
    assert "env: lights_envs:Lights-v0 -> Lights-v0" in result.stderr
    assert (run_dir / "checkpoints" / "step_000000000400.pt").exists()
    assert 'env = "lights_envs:Lights-v0"' in (run_dir / "config.toml").read_text()  # resumable as typed


def test_sb3_trains_on_a_toolkit_env_made_with_gym_make():
    code = textwrap.dedent('''
        import toolkit_hdqn  # providing package imported before gymnasium: registered on its import
        import gymnasium as gym
        from stable_baselines3 import DQN

        env = gym.make("toolkit/KeyDoor-v0")
        assert env.spec.max_episode_steps == 200
        model = DQN("MlpPolicy", env, learning_starts=200, seed=0, device="cpu").learn(1_000)
        print("steps", model.num_timesteps)
    ''')
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "steps 1000"


def test_toolkit_envs_register_when_gymnasium_is_already_imported():
    import gymnasium as gym

    import toolkit.envs  # noqa: F401

    env = gym.make("toolkit/Corridor-v0")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (5,) and env.spec.max_episode_steps == 20


NAN_ENV = '''
import gymnasium as gym
import numpy as np
from gymnasium import spaces


class NanReward(gym.Env):
    """Reward 0, except NaN at the 30th step of an episode."""

    def __init__(self):
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(2, np.float32), float("nan") if self.t == 30 else 0.0, False, False, {}


gym.register("NanReward-v0", entry_point=NanReward, max_episode_steps=50)
'''


def test_a_nan_reward_stops_the_run_naming_it_and_warn_goes_on(tmp_path):
    import json

    (tmp_path / "nan_envs.py").write_text(textwrap.dedent(NAN_ENV))
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    run_dir = tmp_path / "run"
    result = run_cli("train", "random", "--env", "nan_envs:NanReward-v0", "--steps", "1000", "--checkpoint-every",
                     "20", "--eval-every", "0", "--run-dir", str(run_dir), "--no-progress", env=env)
    assert result.returncode == 1  # a failure during training, not refused input
    assert result.stderr.strip().splitlines()[-1] == (
        "error: non-finite reward (episode return) at step 50: the run stopped rather than train on it (the last "
        "checkpoint, step_000000000040.pt, is from before it); --on-nonfinite warn goes on instead")
    assert json.loads((run_dir / "status.json").read_text())["status"] == "failed"

    warned = run_cli("train", "random", "--env", "nan_envs:NanReward-v0", "--steps", "200", "--on-nonfinite", "warn",
                     "--eval-every", "0", "--eval-episodes", "1", "--run-dir", str(tmp_path / "warn"), "--no-progress",
                     env=env)
    assert warned.returncode == 0, warned.stderr
    assert warned.stderr.count("warning: non-finite reward (episode return) at step 50") == 1


def test_help_shows_each_option_s_valid_range(capsys):
    main(["train", "dqn", "--help"])
    out = capsys.readouterr().out
    assert "--learning-rate FLOAT  [default: 0.0001; > 0]" in out
    assert "--gamma FLOAT  [default: 0.99; >= 0 and <= 1]" in out and "--seed INT  [default: 1; >= 0" in out


def test_resume_refuses_a_corrupt_metrics_line_before_touching_anything(tmp_path, capsys):
    from conftest import snapshot

    run_dir = tmp_path / "run"
    assert main(["train", "random", "--env", "toolkit/Identity-v0", "--steps", "200", "--eval-every", "0",
                 "--eval-episodes", "1", "--log-every", "50", "--run-dir", str(run_dir), "--no-progress"]) == 0
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    lines[1] = "this is not json"
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    before = snapshot(run_dir)
    assert main(["resume", str(run_dir), "--steps", "400"]) == 2
    assert f"{run_dir / 'metrics.jsonl'} line 2 is not a metrics record" in capsys.readouterr().err
    assert snapshot(run_dir) == before
    (run_dir / "metrics.jsonl").write_bytes(b"\xff\xfe garbage\n")
    assert main(["resume", str(run_dir), "--steps", "400"]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err


def test_a_missing_env_package_names_toolkits_extra_where_there_is_one():
    from gymnasium.error import DependencyNotInstalled

    from toolkit.planning import missing_dependency_message

    gymnasiums = ('Box2D is not installed, you can install it by run `pip install swig` followed by '
                  '`pip install "gymnasium[box2d]"`')
    assert missing_dependency_message(DependencyNotInstalled(gymnasiums)) == (
        "missing dependency: Box2D is not installed; pip install 'toolkit[box2d]'")
    assert missing_dependency_message(DependencyNotInstalled("MuJoCo is not installed, run `pip install mujoco`\nmore")) == (
        "missing dependency: MuJoCo is not installed, run `pip install mujoco`")


def test_preset_none_keeps_the_algorithms_defaults_where_a_preset_would_apply():
    from toolkit.planning import plan
    from toolkit_ppo.ppo import PPOConfig

    automatic = plan("ppo", {"env": "Hopper-v5"})
    assert automatic.preset == "mujoco" and automatic.algo_config.n_steps == 512
    defaults = plan("ppo", {"env": "Hopper-v5"}, preset="none")
    assert defaults.preset is None and defaults.algo_config == PPOConfig()
    assert (defaults.run.steps, defaults.run.n_envs) == (plan("ppo", {"env": "Pendulum-v1"}, preset="none").run.steps, 1)
    flagged = plan("ppo", {"env": "Hopper-v5", "n_steps": 256}, preset="none")
    assert flagged.algo_config == PPOConfig(n_steps=256)
