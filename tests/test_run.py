"""run.train / run.resume through the Python API: the data loop, W&B, presets and plans."""

import json
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pytest

import toolkit
from toolkit import hookimpl
from toolkit.config import Preset
from toolkit.errors import ToolkitError
from toolkit.plugins import get_registry
from toolkit.run import plan


@dataclass(frozen=True)
class PixelGaussianConfig:
    batch_size: int = 16
    """Samples per update."""
    rate: float = 0.1
    """Step size of the running mean."""


class PixelGaussian:
    """A data-loop algorithm: an independent Gaussian per pixel, fitted by running averages."""

    Config: ClassVar[type] = PixelGaussianConfig
    loop: ClassVar[str] = "data"

    def __init__(self, config, context):
        self.config = config
        self.mean = np.full(context.sample_shape, 0.5)
        self.rng = np.random.default_rng(context.seed)

    def update(self, batch):
        error = batch.mean(axis=0) - self.mean
        self.mean += self.config.rate * error
        return {"loss/mean_error": float(np.abs(error).mean())}

    def sample(self, n):
        return np.clip(self.mean + 0.05 * self.rng.standard_normal((n, *self.mean.shape)), 0, 1)

    def state_dict(self):
        return {"mean": self.mean.copy(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state):
        self.mean[:] = state["mean"]
        self.rng.bit_generator.state = state["rng"]


class PixelGaussianWithEvaluation(PixelGaussian):
    """The same, with the optional ``evaluate(held_out)``: a number and an image batch."""

    def evaluate(self, held_out):
        return {"held_out_error": float(np.abs(held_out.mean(axis=0) - self.mean).mean()),
                "means": np.repeat(self.mean[None], 4, axis=0)}


@dataclass(frozen=True)
class PresetConfig:
    lr: float = 1.0
    """A learning rate."""
    replay: str = field(default="uniform", metadata={"registry": "sampler"})
    """Replay sampler."""




def _bright_squares(split, seed, data_dir):
    rng = np.random.default_rng(seed)
    return (0.8 + 0.1 * rng.random((64, 1, 4, 4))).astype(np.float32)


class TestPlugin:
    @hookimpl
    def register_algorithms(self, register):
        from toolkit.random_agent import RandomAgent

        class Preset_(RandomAgent):
            Config = PresetConfig
            presets = {
                "cartpole": Preset({"lr": 0.5, "steps": 777}, envs=("CartPole-v1",)),
                "atari": Preset({"lr": 0.25}, envs=("atari",)),
            }

        register("pixel-gaussian", PixelGaussian, "Per-pixel Gaussian (test)")
        register("pixel-gaussian-eval", PixelGaussianWithEvaluation, "Per-pixel Gaussian with evaluate (test)")
        register("with-presets", Preset_, "Random actions with presets (test)")

    @hookimpl
    def register_datasets(self, register):
        register("squares", _bright_squares, "Bright 4x4 squares (test)")


@pytest.fixture
def test_plugin():
    registry = get_registry()
    registry.add_plugin("test-plugin", TestPlugin(), "0", builtin=False)
    return registry


def test_data_loop_trains_samples_and_resumes(test_plugin, tmp_path):
    run_dir = toolkit.train("pixel-gaussian", data="squares", steps=60, eval_every=30, checkpoint_every=30,
                            run_dir=str(tmp_path / "gen"), progress=False)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 60 and any("loss/mean_error" in r for r in records)
    grids = sorted((run_dir / "samples").glob("*.png"))
    assert [g.name for g in grids] == ["step_000000030.png", "step_000000060.png"]
    from PIL import Image

    grid = np.asarray(Image.open(grids[-1]))
    side = 8 * 6 + 2  # 64 samples of 4x4 with 2-pixel padding, enlarged 5x (256 // 50)
    assert grid.shape == (side * 5, side * 5) and grid[10:30, 10:30].mean() > 150  # learned "bright"
    toolkit.resume(run_dir, steps=90)
    from toolkit import checkpoint

    state = checkpoint.load(checkpoint.latest(run_dir))
    assert state["step"] == 90 and state["state"]["mean"].mean() > 0.7


def test_data_evaluation_logs_numbers_and_grids_to_the_metrics_file_and_wandb(test_plugin, tmp_path, monkeypatch,
                                                                            capsys):
    from wandb_records import read_finished_run

    monkeypatch.setenv("WANDB_MODE", "offline")
    run_dir = toolkit.train("pixel-gaussian-eval", data="squares", steps=40, eval_every=20, checkpoint_every=0,
                            track=True, run_dir=str(tmp_path / "gen"), progress=False)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    errors = [r["eval/held_out_error"] for r in records if "eval/held_out_error" in r]
    assert len(errors) == 2 and errors[1] < errors[0]  # evaluated on the held-out split as it learned
    assert (run_dir / "samples" / "means_step_000000040.png").is_file()
    assert any(r.get("means_path", "").endswith("means_step_000000040.png") for r in records)
    [run_file] = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    history = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
               for r in read_finished_run(run_file) if r.WhichOneof("record_type") == "history"]
    images = [h for h in history if h.get("samples/_type") == "image-file" and h.get("means/_type") == "image-file"]
    assert [h["global_step"] for h in images] == [20, 40], (history, capsys.readouterr().err)
    assert [h["global_step"] for h in history if "eval/held_out_error" in h] == [20, 40]


def test_check_algorithm_for_a_data_algorithm():
    from toolkit.testing import check_algorithm

    check_algorithm(PixelGaussian)


def test_presets_apply_by_env_and_family_and_flags_win(test_plugin):
    p = plan("with-presets", {"env": "CartPole-v1"})
    assert p.preset == "cartpole" and p.algo_config.lr == 0.5 and p.run.steps == 777
    p = plan("with-presets", {"env": "Pong"})
    assert p.preset == "atari" and p.algo_config.lr == 0.25
    p = plan("with-presets", {"env": "CartPole-v1", "lr": 2.0})
    assert p.algo_config.lr == 2.0 and p.run.steps == 777
    p = plan("with-presets", {"env": "Acrobot-v1"})
    assert p.preset is None and p.algo_config.lr == 1.0
    with pytest.raises(ToolkitError, match="unknown preset 'cartpol'; did you mean: cartpole"):
        plan("with-presets", {"env": "CartPole-v1"}, preset="cartpol")
    with pytest.raises(ToolkitError, match="unknown sampler 'prioritised'"):
        plan("with-presets", {"replay": "prioritised"})


def test_the_preset_is_announced_with_the_values_the_run_uses(test_plugin):
    from toolkit.planning import preset_settings

    p = plan("with-presets", {"env": "CartPole-v1", "lr": 2.0})
    assert preset_settings(p) == "lr=2 (preset: 0.5), steps=777"


def test_a_preset_named_for_other_envs_is_allowed_with_a_note(test_plugin):
    from toolkit.planning import preset_mismatch

    p = plan("with-presets", {"env": "Acrobot-v1"}, preset="atari")
    assert p.algo_config.lr == 0.25  # applied as asked
    assert preset_mismatch(p) == "preset 'atari' is made for atari; Acrobot-v1 is not one of them"
    assert preset_mismatch(plan("with-presets", {"env": "Pong"}, preset="atari")) == ""  # by family
    assert preset_mismatch(plan("with-presets", {"env": "CartPole-v1"})) == ""


def test_a_preset_overrides_some_values_on_the_subjects_it_names():
    from toolkit.config import Preset

    preset = Preset({"lr": 1.0, "steps": 10}, overrides={"ring8": {"lr": 0.1}, "atari": {"steps": 5}})
    assert preset.values_for({"ring8"}) == {"lr": 0.1, "steps": 10}
    assert preset.values_for({"Pong", "PongNoFrameskip-v4", "atari"}) == {"lr": 1.0, "steps": 5}  # by family
    assert preset.values_for({"digits"}) == {"lr": 1.0, "steps": 10}
    assert preset.values == {"lr": 1.0, "steps": 10}  # the preset itself is unchanged


def test_config_file_sits_between_preset_and_flags(test_plugin, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[run]\nenv = "CartPole-v1"\nsteps = 5\n[algo]\nlr = 0.75\n')
    p = plan("with-presets", {"seed": 9}, config_file=path)
    assert (p.run.steps, p.algo_config.lr, p.run.seed, p.preset) == (5, 0.75, 9, "cartpole")
    p = plan("with-presets", {"steps": 11}, config_file=path)
    assert p.run.steps == 11


def test_tracking_writes_an_offline_wandb_run_that_resume_continues(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_dir = toolkit.train("random", env="toolkit/Identity-v0", steps=64, eval_every=0, eval_episodes=1,
                            track=True, run_dir=str(tmp_path / "tracked"), progress=False)
    run_id = (run_dir / "wandb_id.txt").read_text()
    offline_runs = list((run_dir / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(offline_runs) == 1 and list(offline_runs[0].glob("*.wandb"))
    toolkit.resume(run_dir, steps=128)
    assert (run_dir / "wandb_id.txt").read_text() == run_id
    resumed = list((run_dir / "wandb").glob(f"offline-run-*-{run_id}*/run-{run_id}.wandb"))
    assert len(resumed) == 2  # a second offline segment of the same run id, for `wandb sync`


def test_same_seed_same_metrics(tmp_path):
    def episode_returns(name):
        run_dir = toolkit.train("random", env="CartPole-v1", steps=2000, seed=5, eval_every=0, eval_episodes=2,
                                run_dir=str(tmp_path / name), progress=False)
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return [json.loads(line)["train/episode_return"] for line in lines if "train/episode_return" in line]

    first = episode_returns("a")
    assert first == episode_returns("b") and len(first) > 20


def test_perf_sps_covers_the_steps_since_the_previous_metrics_line(monkeypatch, tmp_path):
    """A long update between two lines counts: the rate is the interval's, not the progress
    display's recent window (which an on-policy update can fall outside of)."""
    from toolkit import loggers

    clock = [100.0]
    monkeypatch.setattr(loggers.time, "monotonic", lambda: clock[0])
    lines = []

    class Capture:
        def log(self, step, metrics):
            lines.append((step, metrics))

    run_logger = loggers.RunLogger([Capture()], loggers.ConsoleLogger(tmp_path, enabled=False), start=0)
    for step in range(100, 1001, 100):  # 900 steps/s while acting, as the display sees it
        clock[0] += 100 / 900
        run_logger.progress(step)
    clock[0] += 9.0  # then a 9-second update before the line
    run_logger.flush_metrics(1000)
    assert lines[-1][1]["perf/sps"] == pytest.approx(1000 / (1000 / 900 + 9.0))
