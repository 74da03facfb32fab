"""Ape-X DQN: the paper's math as functions, the samples-per-insert limiter, and runs on a local
Ray (conformance, a 2-actor run that checkpoints and resumes, learning, SIGINT leaving no Ray
process behind)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from gymnasium import spaces

from toolkit import checkpoint
from toolkit.cli import main
from toolkit.errors import ToolkitError
from toolkit.testing import check_algorithm
from toolkit_ray.apex import SamplesPerInsertLimiter, actor_epsilons, n_step_returns

# In a parallel suite (pytest -n) these run one after another in one worker, beside the sweep
# tests in another: each starts its own local Ray.
pytestmark = pytest.mark.xdist_group("ray-apex")

SMALL = {"actors": 2, "fragment": 20, "learning_starts": 100, "batch_size": 32, "hidden": (32,),
         "samples_per_insert": 4.0, "weight_sync": 10, "target_update_interval": 20}


def test_actor_epsilons_follow_the_papers_schedule():
    eps = actor_epsilons(8, 0.4, 7.0)
    assert eps[0] == pytest.approx(0.4) and eps[-1] == pytest.approx(0.4**8)
    assert eps[3] == pytest.approx(0.4 ** (1 + 7 * 3 / 7)) and all(a > b for a, b in zip(eps, eps[1:]))
    assert actor_epsilons(1) == [0.4]


def test_n_step_returns_are_cut_at_episode_ends_and_at_the_last_step():
    rewards = np.array([[1.0], [2.0], [4.0], [8.0]], np.float32)
    terminated = np.array([[False], [True], [False], [False]])
    ended = terminated.copy()
    ret, discount, last = n_step_returns(rewards, terminated, ended, 0.5, 3, 4)
    # step 0: 1 + 0.5 * 2, then the episode terminated at step 1: no bootstrap
    # step 2: 4 + 0.5 * 8, cut at the last step: bootstrap with 0.5^2 from after step 3
    np.testing.assert_allclose(ret[:, 0], [2.0, 2.0, 8.0, 8.0])
    np.testing.assert_allclose(discount[:, 0], [0.0, 0.0, 0.25, 0.5])
    np.testing.assert_array_equal(last[:, 0], [1, 1, 3, 3])


def test_n_step_returns_equal_the_replays_targets():
    """The actors' initial priorities use the returns the learner's batches will carry."""
    from gymnasium import spaces

    from toolkit.replay import ReplayBuffer, UniformSampler

    rng = np.random.default_rng(0)
    T = 30
    rewards = rng.random((T, 1)).astype(np.float32)
    terminated = rng.random((T, 1)) < 0.15
    truncated = ~terminated & (rng.random((T, 1)) < 0.1)
    buffer = ReplayBuffer(100, spaces.Box(-1, 1, (1,)), spaces.Discrete(2), sampler=UniformSampler(100))
    slots = [buffer.add(np.zeros((1, 1)), np.zeros(1, int), rewards[t], np.zeros((1, 1)), terminated[t], truncated[t])[0]
             for t in range(T)]
    ret, discount, _ = n_step_returns(rewards, terminated, terminated | truncated, 0.9, 3, T)

    class Fixed:  # draw the slots in order
        def sample(self, n, rng, progress):
            return np.array(slots), np.ones(n, np.float32)

    buffer.sampler = Fixed()
    batch = buffer.sample(T, gamma=0.9, n_step=3)
    np.testing.assert_allclose(batch.reward, ret[:, 0], rtol=1e-6)
    np.testing.assert_allclose(batch.discount, discount[:, 0], rtol=1e-6)


def test_the_limiter_holds_the_ratio_and_never_blocks_both_sides():
    batch, insert, ratio = 32, 100, 4.0
    limiter = SamplesPerInsertLimiter(ratio, 200, SamplesPerInsertLimiter.tolerance_for(ratio, batch, insert))
    assert not limiter.can_sample(batch) and limiter.can_insert(insert)  # nothing to learn from yet
    rng = np.random.default_rng(0)
    for _ in range(5000):
        inserting = limiter.can_insert(insert)
        sampling = limiter.can_sample(batch)
        assert inserting or sampling, (limiter.inserts, limiter.samples)
        if inserting and (not sampling or rng.random() < 0.5):
            limiter.inserts += insert
        else:
            limiter.samples += batch
    assert limiter.samples / (limiter.inserts - 200) == pytest.approx(ratio, rel=0.05)


def descendants(root: int) -> dict[int, bytes]:
    """The processes below ``root`` (Ray's daemons and workers started by a run), with their
    command lines, so that one still alive later is told apart from a reused pid."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        try:
            found[pid] = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        todo += children.get(pid, [])
    return found


def still_alive(processes: dict[int, bytes]) -> list[int]:
    alive = []
    for pid, command in processes.items():
        try:
            if open(f"/proc/{pid}/cmdline", "rb").read() == command:
                alive.append(pid)
        except OSError:
            pass
    return alive


def test_a_replay_beyond_memory_is_refused_before_ray_starts_whatever_the_shards(tmp_path, capsys):
    """Each shard alone would fit; all of them, on this machine's local Ray, do not."""
    from toolkit.replay import memory_available

    _, total = memory_available()
    run_dir = tmp_path / "run"
    buffer_size = 3 * total // 33  # CartPole: 33 bytes a transition, so each of 4 shards takes 3/4 of the memory
    code = main(["train", "apex", "--env", "CartPole-v1", "--actors", "4", "--replay-shards", "4",
                 "--buffer-size", str(buffer_size), "--run-dir", str(run_dir), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and not run_dir.exists(), err
    assert f"a replay buffer of {buffer_size:,} transitions takes" in err and "pass --buffer-size" in err


def test_a_clusters_shards_are_left_to_check_themselves_on_their_nodes():
    from toolkit.interfaces import EnvSpec
    from toolkit_ray.apex import ApexConfig, ApexDQN

    spec = EnvSpec("CartPole-v1", "gymnasium", spaces.Box(-1, 1, (4,), np.float32), spaces.Discrete(2))
    ApexDQN.check(ApexConfig(buffer_size=10**15, actors=4, replay_shards=4, address="ray://head:10001"), spec)
    with pytest.raises(ToolkitError, match="more than this machine's"):
        ApexDQN.check(ApexConfig(buffer_size=10**15, actors=4, replay_shards=4), spec)


def test_sigint_stops_the_actors_and_leaves_no_ray_process(tmp_path):
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "toolkit.cli", "train", "apex", "--env", "CartPole-v1",
                                "--steps", "1000000", "--actors", "2", "--fragment", "25", "--hidden", "32",
                                "--checkpoint-every", "0", "--eval-every", "0", "--run-dir", str(run_dir),
                                "--no-progress"], stderr=subprocess.PIPE, text=True)
    started: dict[int, bytes] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # training: the actors have sent experience
            started.update(descendants(process.pid))
            if (run_dir / "metrics.jsonl").exists() and "train/episode_return" in (run_dir / "metrics.jsonl").read_text():
                break
            time.sleep(0.5)
        started.update(descendants(process.pid))
        assert any(b"ray::Actor" in command for command in started.values()), "no Ray actor process seen"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "stopped at step" in err and checkpoint.latest(run_dir) is not None
    deadline = time.monotonic() + 15
    while still_alive(started) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not still_alive(started), f"Ray processes of the run are still alive: {still_alive(started)}"


# -- on a local Ray shared by the tests below (the SIGINT test above starts its own) --


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_conformance(local_ray):
    check_algorithm("apex", env="CartPole-v1", overrides=SMALL, steps=1200)


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_two_actor_run_trains_checkpoints_and_resumes(local_ray, tmp_path):
    run_dir = tmp_path / "run"
    flags = ["--actors", "2", "--fragment", "25", "--learning-starts", "200", "--batch-size", "32",
             "--samples-per-insert", "4", "--hidden", "32", "--weight-sync", "10", "--eval-every", "1500",
             "--eval-episodes", "3", "--checkpoint-every", "1000", "--log-every", "500", "--save-replay",
             "--compile-optimizer"]
    assert main(["train", "apex", "--env", "CartPole-v1", "--steps", "3000", *flags, "--run-dir", str(run_dir),
                 "--no-progress"]) == 0
    records = read_metrics(run_dir)
    keys = set().union(*records)
    assert {"perf/env_sps", "perf/updates_per_s", "perf/samples_per_insert", "perf/weight_lag", "loss/td",
            "train/episode_return", "train/actor0_episode_return", "train/actor1_episode_return",
            "eval/mean_return"} <= keys
    ratio = [r["perf/samples_per_insert"] for r in records if "perf/samples_per_insert" in r][-1]
    assert 2.0 < ratio <= 4.5  # held near R = 4 once learning started (it starts at 200 of ~3000)
    latest = checkpoint.latest(run_dir)
    state = checkpoint.load(latest)
    assert state["step"] >= 3000 and state["state"]["updates"] > 100
    assert set(state["replay"]) == {"shard0"} and state["replay"]["shard0"]["added"] > 2000
    np.testing.assert_allclose(state["state"]["epsilons"], [0.4, 0.4**8])
    assert len(set(state["state"]["actor_seeds"])) == 2  # each actor its own env seed
    assert main(["resume", str(run_dir), "--steps", "4000"]) == 0
    resumed = read_metrics(run_dir)
    assert resumed[-1]["step"] >= 4000 and json.loads((run_dir / "status.json").read_text())["status"] == "finished"
    assert checkpoint.load(checkpoint.latest(run_dir))["state"]["updates"] > state["state"]["updates"]


def test_apex_learns_the_identity_task(local_ray, tmp_path):
    """Also with learning starts 0 (the LunarLander preset's): the limiter lets the actors fill a
    batch first, since a shard with less than a batch answers no sample request."""
    run_dir = tmp_path / "identity"
    assert main(["train", "apex", "--env", "toolkit/Identity-v0", "--steps", "2500", "--actors", "2",
                 "--fragment", "25", "--learning-starts", "0", "--batch-size", "32", "--samples-per-insert", "16",
                 "--learning-rate", "3e-3", "--hidden", "32", "--n-step", "1", "--gamma", "0.9",
                 "--target-update-interval", "100", "--eval-every", "2500", "--eval-episodes", "10",
                 "--run-dir", str(run_dir), "--no-progress"]) == 0
    final = [r for r in read_metrics(run_dir) if "eval/mean_return" in r][-1]
    assert final["eval/mean_return"] >= 15  # of 16: it repeats the shown symbol
