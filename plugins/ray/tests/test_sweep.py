"""Sweeps on a local Ray: a trial is exactly a standalone run; a search prunes and its best
configuration trains again to the same score."""

from __future__ import annotations

import csv
import json
import tomllib

import pytest
import torch

from toolkit import checkpoint
from toolkit.cli import main

# In a parallel suite (pytest -n) the sweep tests run one after another in one worker: each
# starts its own local Ray (or cluster) sized to the whole machine.
pytestmark = pytest.mark.xdist_group("ray")

SMALL_DQN = ["--env", "CartPole-v1", "--steps", "800", "--learning-starts", "200", "--eval-every", "200",
             "--eval-episodes", "2", "--checkpoint-every", "400", "--threads", "1"]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One Ray for the module (sweeps use a Ray that is already running)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def lines_without_perf(run_dir):
    records = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = {k: v for k, v in json.loads(line).items() if not k.startswith("perf/")}
        if len(record) > 1:
            records.append(record)
    return records


def final_parameters(run_dir):
    return checkpoint.load(checkpoint.latest(run_dir))["state"]


def assert_same_state(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_state(a[key], b[key])
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)


@pytest.fixture(scope="module")
def seed_sweep(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sweeps") / "seeds"
    assert main(["sweep", "dqn", *SMALL_DQN, "--seeds", "2", "--grid", "replay=uniform,prioritized", "--concurrency", "2",
                 "--sweep-dir", str(directory)]) == 0
    return directory


def test_a_seed_sweep_trial_is_exactly_a_standalone_run(seed_sweep, tmp_path):
    rows = list(csv.DictReader(open(seed_sweep / "summary.csv")))
    assert sorted((r["replay"], r["seed"]) for r in rows) == [("prioritized", "0"), ("prioritized", "1"),
                                                               ("uniform", "0"), ("uniform", "1")]
    assert {r["status"] for r in rows} == {"finished"}
    trial = next(seed_sweep / "runs" / r["trial"] for r in rows if r["seed"] == "1" and r["replay"] == "prioritized")
    standalone = tmp_path / "standalone"
    assert main(["train", "dqn", *SMALL_DQN, "--seed", "1", "--replay", "prioritized", "--run-dir", str(standalone),
                 "--no-progress"]) == 0
    assert lines_without_perf(trial) == lines_without_perf(standalone)
    assert_same_state(final_parameters(trial), final_parameters(standalone))
    assert (seed_sweep / "sweep.png").stat().st_size > 0 and (seed_sweep / "best.toml").exists()
    assert main(["plot", str(seed_sweep), "--out", str(tmp_path / "curve.png")]) == 0  # a sweep directory plots


def test_a_search_prunes_and_its_best_toml_trains_to_the_best_score(tmp_path, capsys):
    directory = tmp_path / "search"
    # a good learning rate gets CartPole's evaluation return to about 80 within this budget, a poor one stays near 10
    cartpole = ["--env", "CartPole-v1", "--steps", "1200", "--learning-starts", "100", "--train-frequency", "8",
                "--gradient-steps", "8", "--eval-every", "300", "--eval-episodes", "2", "--checkpoint-every", "600",
                "--threads", "1"]
    code = main(["sweep", "dqn", *cartpole, "--search", "learning_rate=loguniform(1e-5,1e-2)",
                 "--search", "n_step=choice(1,3)", "--trials", "8", "--pruner", "asha", "--concurrency", "2",
                 "--sweep-dir", str(directory)])
    err = capsys.readouterr().err
    assert code == 0, err
    rows = list(csv.DictReader(open(directory / "summary.csv")))
    assert len(rows) == 8 and {"learning_rate", "n_step", "eval/mean_return", "status", "run_dir"} <= set(rows[0])
    assert any(r["status"] == "pruned" for r in rows), rows
    # a trial Tune stops as it reports its last evaluation has done every step: finished
    assert {r["status"] for r in rows} <= {"finished", "pruned"}, rows
    finished = [r for r in rows if r["status"] == "finished"]
    best = max(finished, key=lambda r: float(r["eval/mean_return"]))
    assert f"best: {best['trial']}" in err
    config = tomllib.loads((directory / "best.toml").read_text())
    assert config["algo"]["learning_rate"] == pytest.approx(float(best["learning_rate"]))
    again = tmp_path / "again"
    assert main(["train", "dqn", "--config", str(directory / "best.toml"), "--run-dir", str(again),
                 "--no-progress"]) == 0
    last = [r for r in lines_without_perf(again) if "eval/mean_return" in r][-1]
    assert last["eval/mean_return"] == pytest.approx(float(best["eval/mean_return"]))
    assert (directory / "sweep.png").stat().st_size > 0
