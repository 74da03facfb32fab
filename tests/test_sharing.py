"""Using and sharing trained agents: toolkit.load, enjoy, export, push / pull, and the
TensorBoard and CSV loggers, on short real runs (CartPole DQN, Pendulum TRPO, Pong DQN)."""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict

import numpy as np
import pytest

from conftest import snapshot

pytest.importorskip("toolkit_dqn")  # the bundled plugins: `make test` installs them all


def train(tmp_path_factory, name: str, algo: str, **options):
    import toolkit

    return toolkit.train(algo, run_dir=str(tmp_path_factory.mktemp(name) / "run"), progress=False, **options)


@pytest.fixture
def cli(capsys):
    """`toolkit ARGS` in this process (the imports are paid once): (exit code, stdout, stderr)."""
    from toolkit.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="module")
def cartpole(tmp_path_factory):
    return train(tmp_path_factory, "cartpole", "dqn", env="CartPole-v1", steps=2000, learning_starts=500,
                 eval_every=1000, eval_episodes=3, checkpoint_every=1000)


@pytest.fixture(scope="module")
def pendulum(tmp_path_factory):
    """A continuous-action agent whose policy includes a learned observation normaliser."""
    return train(tmp_path_factory, "pendulum", "trpo", env="Pendulum-v1", steps=512, n_envs=1, n_steps=256,
                 normalize_obs=True, eval_every=512, eval_episodes=1)


@pytest.fixture(scope="module")
def pong(tmp_path_factory):
    """An Atari run of a few hundred steps: frame stacks, uint8 observations, the Nature CNN."""
    return train(tmp_path_factory, "pong", "dqn", env="Pong", steps=300, learning_starts=100, train_frequency=4,
                 buffer_size=1000, eval_every=300, eval_episodes=1, max_episode_steps=150)


@pytest.fixture(scope="module")
def digits_vae(tmp_path_factory):
    """A generative run with TensorBoard on: sample grids as images."""
    return train(tmp_path_factory, "vae", "vae", data="digits", steps=40, eval_every=20, loggers="tensorboard")


def policy_actions(run_dir, observations):
    """What `toolkit eval` runs: the restored algorithm's evaluation policy."""
    from toolkit.offline import restore_algorithm

    return np.asarray(restore_algorithm(run_dir).algorithm.policy()(observations))


def observations_of(agent, n=100):
    from toolkit.export import env_observations

    return env_observations(agent, n, seed=3)


# -- toolkit.load --------------------------------------------------------------------------


def test_load_predicts_the_eval_policy_actions(cartpole):
    import gymnasium as gym

    import toolkit

    agent = toolkit.load(cartpole)
    assert agent.algo == "dqn" and agent.env_id == "CartPole-v1" and agent.step == 2000
    assert agent.config["algo"]["learning_starts"] == 500 and agent.scores.steps == (1000, 2000)
    assert agent.scores.best == max(agent.scores.mean_returns)
    observations = observations_of(agent)
    actions = agent.predict(observations)
    assert actions.shape == (100,) and np.array_equal(actions, policy_actions(cartpole, observations))
    assert len(set(actions.tolist())) == 2  # a policy that always pushes one way would make this test weak
    obs, _ = gym.make("CartPole-v1").reset(seed=0)  # a raw observation of the env: no preprocessing
    assert agent.predict(obs) == policy_actions(cartpole, obs[None])[0]
    assert agent.predict(obs, deterministic=False) in (0, 1)


def test_load_refuses_observations_of_the_wrong_shape(cartpole):
    import toolkit
    from toolkit.errors import ToolkitError

    with pytest.raises(ToolkitError, match=r"expected \(4,\)"):
        toolkit.load(cartpole).predict(np.zeros(3))


def test_load_atari_points_to_make_env(pong):
    import gymnasium as gym

    import toolkit
    from toolkit.errors import ToolkitError

    agent = toolkit.load(pong)
    raw, _ = gym.make("PongNoFrameskip-v4").reset(seed=0)
    with pytest.raises(ToolkitError, match="make_env"):
        agent.predict(raw)
    env = agent.make_env(seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == agent.observation_space.shape and obs.dtype == np.uint8
    assert agent.predict(obs) == policy_actions(pong, obs[None])[0]


def test_load_a_generative_model(digits_vae):
    import toolkit

    model = toolkit.load(digits_vae)
    assert model.dataset == "digits" and model.step == 40
    samples = model.sample(5, seed=1)
    assert samples.shape == (5, 1, 8, 8) and np.array_equal(samples, model.sample(5, seed=1))


# -- export ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["cartpole", "pendulum", "pong"])
def test_onnx_export_gives_the_same_actions_in_onnxruntime(fixture, request, tmp_path, cli):
    import onnxruntime

    import toolkit

    run_dir = request.getfixturevalue(fixture)
    out = tmp_path / "policy.onnx"
    code, _, err = cli("export", run_dir, "--format", "onnx", "--out", out)
    assert code == 0, err
    agent = toolkit.load(run_dir)
    observations = observations_of(agent)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    actions = session.run(["action"], {"obs": observations})[0]
    expected = agent.predict(observations)
    if fixture == "pendulum":
        np.testing.assert_allclose(actions, expected, atol=1e-5)
        assert np.abs(expected).max() <= 2.0 and expected.std() > 0  # inside the bounds, not constant
    else:
        assert np.array_equal(actions, expected)


def test_torchscript_export(cartpole, tmp_path, cli):
    import torch

    import toolkit

    out = tmp_path / "policy.pt"
    assert cli("export", cartpole, "--format", "torchscript", "--out", out)[0] == 0
    agent = toolkit.load(cartpole)
    observations = observations_of(agent)
    module = torch.jit.load(str(out))
    assert np.array_equal(module(torch.as_tensor(observations)).numpy(), agent.predict(observations))


def test_export_refusals_write_nothing(cartpole, digits_vae, tmp_path, cli):
    before = snapshot(tmp_path)
    for args, phrase in (([cartpole, "--format", "tflite"], "--format tflite"),
                         ([cartpole, "--out", tmp_path / "policy.txt"], "file type"),
                         ([cartpole, "--format", "torchscript", "--out", tmp_path / "p.onnx"], "file type"),
                         ([digits_vae, "--out", tmp_path / "p.onnx"], "generative")):
        code, _, err = cli("export", *args)
        assert code == 2 and phrase in err and err.count("\n") == 1, err
    assert snapshot(tmp_path) == before


# -- enjoy ----------------------------------------------------------------------------------


def video_facts(path):
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    return meta["codec"], sum(1 for _ in reader)


@pytest.mark.parametrize("fixture", ["cartpole", "pendulum", "pong"])
def test_enjoy_writes_an_h264_mp4_of_every_episode(fixture, request, tmp_path, cli):
    run_dir = request.getfixturevalue(fixture)
    out = tmp_path / "play.mp4"
    code, stdout, err = cli("enjoy", run_dir, "--episodes", "2", "--video", out)
    assert code == 0, err
    lengths = [int(line.split("(")[1].split()[0]) for line in stdout.splitlines() if line.startswith("episode ")]
    assert len(lengths) == 2 and f"wrote {out}" in stdout
    codec, frames = video_facts(out)
    # both episodes, one frame per step (Atari reports emulator frames: its episodes here end at 150 steps)
    assert codec == "h264" and frames == (300 if fixture == "pong" else sum(lengths))


def test_enjoy_render_without_a_display_is_refused(cartpole, monkeypatch, cli):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, _, err = cli("enjoy", cartpole, "--render")
    assert code == 2 and "no display" in err


# -- the stochastic policy ------------------------------------------------------------------


def eval_json(cli, run_dir, *args):
    code, stdout, err = cli("eval", run_dir, "--json", *args)
    assert code == 0, err
    return json.loads(stdout)


@pytest.mark.parametrize("fixture", ["cartpole", "pendulum"])
def test_eval_stochastic_samples_the_exploring_policy_reproducibly(fixture, request, cli):
    run_dir = request.getfixturevalue(fixture)
    sampled = eval_json(cli, run_dir, "--episodes", "3", "--seed", "5", "--stochastic")
    assert sampled["policy"] == "stochastic" and len(sampled["returns"]) == 3
    # the samples are seeded as the envs are: the same seed, the same episodes
    assert eval_json(cli, run_dir, "--episodes", "3", "--seed", "5", "--stochastic")["returns"] == sampled["returns"]
    deterministic = eval_json(cli, run_dir, "--episodes", "3", "--seed", "5")
    assert deterministic["policy"] == "deterministic" and deterministic["returns"] != sampled["returns"]
    assert eval_json(cli, run_dir, "--episodes", "3", "--seed", "6", "--stochastic")["returns"] != sampled["returns"]


def test_enjoy_stochastic_plays_what_eval_stochastic_scores(pendulum, cli):
    code, stdout, err = cli("enjoy", pendulum, "--episodes", "1", "--stochastic")
    assert code == 0, err
    assert stdout.splitlines()[-1].endswith("over 1 episodes (stochastic policy)")
    played = float(stdout.splitlines()[0].split("return ")[1].split()[0])
    scored = eval_json(cli, pendulum, "--episodes", "1", "--stochastic")["returns"][0]
    assert played == pytest.approx(scored, abs=0.005)  # the same env seed and samples; enjoy prints 2 decimals


def test_a_stochastic_policy_without_a_seed_parameter_is_still_sampled():
    """Plugins written before ``stochastic_policy(seed=)`` keep working, unseeded."""
    from toolkit.errors import ToolkitError
    from toolkit.offline import stochastic_policy

    class OldStyle:
        def stochastic_policy(self):
            return lambda obs: "old"

    class Seeded:
        def stochastic_policy(self, seed=None):
            return lambda obs: seed

    assert stochastic_policy(OldStyle(), "old", seed=3)(None) == "old"
    assert stochastic_policy(Seeded(), "seeded", seed=3)(None) == 3
    with pytest.raises(ToolkitError, match="'greedy' has no stochastic policy"):
        stochastic_policy(object(), "greedy", seed=3)


# -- push / pull ----------------------------------------------------------------------------


def test_push_dry_run_then_pull_round_trips(cartpole, tmp_path, cli):
    folder, pulled = tmp_path / "upload", tmp_path / "pulled"
    code, _, err = cli("push", cartpole, "--repo", "someone/cartpole-dqn", "--episodes", "4", "--with-checkpoint",
                       "--dry-run", folder)
    assert code == 0, err
    assert {p.name for p in folder.iterdir()} == {"README.md", "model.safetensors", "model.json", "config.toml",
                                                  "metrics.jsonl", "curve.png", "replay.mp4", "checkpoints"}
    card = (folder / "README.md").read_text()
    original = json.loads(cli("eval", cartpole, "--episodes", "4", "--json")[1])
    assert f"| CartPole-v1 | {original['mean_return']:.2f} ± {original['std_return']:.2f} | 4 |" in card
    assert "![learning curve](curve.png)" in card and "toolkit train dqn --config config.toml" in card
    assert "library_name: toolkit" in card and "plugin: dqn" in card
    assert video_facts(folder / "replay.mp4")[0] == "h264"

    assert cli("pull", folder, "--run-dir", pulled)[0] == 0
    again = json.loads(cli("eval", pulled, "--episodes", "4", "--json")[1])
    assert again["returns"] == original["returns"]
    code, _, err = cli("resume", pulled, "--steps", "2200")
    assert code == 0, err
    assert json.loads((pulled / "status.json").read_text())["status"] == "finished"


def test_shared_weights_hold_no_pickles(cartpole, tmp_path):
    """The weights are safetensors + JSON: the rebuilt state equals the checkpoint's."""
    import torch

    from toolkit import checkpoint, hub

    state = checkpoint.load(cartpole / "best.pt")
    hub.write_weights(state, tmp_path)
    shared = hub.read_weights(tmp_path)
    for name, tensor in state["state"]["q"].items():
        assert torch.equal(shared["state"]["q"][name], tensor)
    assert shared["state"]["optimizer"]["param_groups"] == state["state"]["optimizer"]["param_groups"]
    assert set(shared["state"]["optimizer"]["state"]) == set(state["state"]["optimizer"]["state"])  # int keys
    assert shared["state"]["rng"] == state["state"]["rng"] and shared["config"] == state["config"]


def test_push_and_pull_refusals_change_nothing(cartpole, tmp_path, cli):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    before = snapshot(tmp_path)
    for args, phrase in ((["push", str(cartpole), "--repo", "not a repo", "--dry-run", str(tmp_path / "x")], "user/name"),
                         (["push", str(cartpole), "--repo", "a/b", "--dry-run", str(occupied)], "not an empty"),
                         (["pull", str(cartpole), "--run-dir", str(tmp_path / "y")], "does not hold toolkit weights"),
                         (["pull", "a/b", "--run-dir", str(occupied)], "not empty")):
        code, _, err = cli(*args)
        assert code == 2 and phrase in err, (args, err)
    assert snapshot(tmp_path) == before


# -- TensorBoard and CSV --------------------------------------------------------------------


def metric_steps(run_dir):
    """key -> steps, as metrics.jsonl has them (media paths aside)."""
    steps = defaultdict(list)
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        for key in record:
            if key != "step" and not key.endswith("_path"):
                steps[key].append(record["step"])
    return dict(steps)


def test_tensorboard_and_csv_match_metrics_across_a_resume(tmp_path, cli):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    args = ["--env", "CartPole-v1", "--steps", "600", "--learning-starts", "100", "--eval-every", "200",
            "--max-episode-steps", "60", "--eval-episodes", "1", "--checkpoint-every", "200", "--capture-video",
            "--loggers", "tensorboard,csv", "--run-dir", run_dir, "--no-progress"]
    assert cli("train", "dqn", *args)[0] == 0
    # a crash after the step-400 checkpoint: the last 200 steps were logged, then lost
    (run_dir / "checkpoints" / "step_000000000600.pt").unlink()
    code, _, err = cli("resume", run_dir, "--steps", "800")
    assert code == 0, err

    expected = metric_steps(run_dir)
    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    assert set(accumulator.Tags()["scalars"]) == set(expected)
    for key, steps in expected.items():
        assert [event.step for event in accumulator.Scalars(key)] == steps, key
    videos = accumulator.Images("eval/video")
    assert [v.step for v in videos] == [200, 400, 600, 800]
    assert videos[0].encoded_image_string[:6] == b"GIF89a" and videos[0].width <= 320

    with open(run_dir / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {key: [int(r["step"]) for r in rows if r[key] != ""] for key in expected} == expected


def test_tensorboard_images_of_a_generative_run(digits_vae):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(digits_vae / "tensorboard"))
    accumulator.Reload()
    assert [image.step for image in accumulator.Images("samples")] == [20, 40]
    assert accumulator.Images("samples")[0].encoded_image_string[:4] == b"\x89PNG"


# -- docs -----------------------------------------------------------------------------------


def test_docs_site_builds_strict(tmp_path):
    """`make docs`: the mkdocs site (command pages, plugin pages, API reference) with no warning."""
    import subprocess
    import sys

    from conftest import ROOT

    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING" not in result.stderr
    site = tmp_path / "site"
    for page in ("commands/enjoy", "commands/push", "bundled/dqn", "api/interfaces", "plugins"):
        assert (site / page / "index.html").is_file(), page
    assert "ExportsPolicy" in (site / "api" / "interfaces" / "index.html").read_text()
    assert "--episodes" in (site / "commands" / "enjoy" / "index.html").read_text()


def test_every_distribution_ships_py_typed():
    import tomllib
    from importlib.resources import files

    from conftest import ROOT

    packages = {"toolkit": ROOT / "pyproject.toml"}
    for project in sorted((ROOT / "plugins").glob("*/pyproject.toml")):
        packages[f"toolkit_{project.parent.name}"] = project
    for package, pyproject in packages.items():
        assert files(package).joinpath("py.typed").is_file(), package
        data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"].get("package-data", {})
        assert "py.typed" in data.get(package, []), f"{pyproject} does not ship {package}/py.typed"
