"""Run lifecycle: exact resume after a kill, atomic checkpoints, videos, W&B, plots."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from conftest import run_cli
from toolkit import checkpoint

HERE = Path(__file__).parent


def linear_q(*args, env=None, timeout=300):
    full_env = {**os.environ, "WANDB_MODE": "offline", **(env or {})}
    return subprocess.run([sys.executable, str(HERE / "toolkit_with_linear_q.py"), *args], env=full_env,
                          capture_output=True, text=True, timeout=timeout)


TRAIN = ["train", "linear-q", "--env", "toolkit/Identity-v0", "--n-envs", "2", "--steps", "2000", "--seed", "3",
         "--checkpoint-every", "500", "--eval-every", "500", "--eval-episodes", "2", "--log-every", "100",
         "--save-replay", "--no-progress"]


def metric_lines(run_dir):
    lines = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = {k: v for k, v in json.loads(line).items() if not k.startswith("perf/")}
        if len(record) > 1:
            lines.append(record)
    return lines


def test_resume_after_sigkill_reproduces_the_uninterrupted_run(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert linear_q(*TRAIN, "--run-dir", str(straight)).returncode == 0
    crash = linear_q(*TRAIN, "--run-dir", str(killed), env={"LINEAR_Q_KILL_AT": "1300"})
    assert crash.returncode == -signal.SIGKILL
    assert checkpoint.latest(killed).name == "step_000000001000.pt"
    resumed = linear_q("resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert "warning" not in resumed.stderr  # env state and replay were both restored

    a = checkpoint.load(straight / "checkpoints" / "step_000000002000.pt")
    b = checkpoint.load(killed / "checkpoints" / "step_000000002000.pt")
    for name in ("weight", "bias"):
        assert torch.equal(a["state"]["q"][name], b["state"]["q"][name])
    assert torch.equal(a["state"]["optimizer"]["state"][0]["exp_avg"], b["state"]["optimizer"]["state"][0]["exp_avg"])
    assert metric_lines(straight) == metric_lines(killed)
    assert sum("eval/mean_return" in r for r in metric_lines(killed)) == 4


def test_sigkill_while_writing_a_checkpoint_leaves_the_previous_one_loadable(tmp_path):
    run_dir = tmp_path / "run"
    args = ["train", "linear-q", "--env", "toolkit/Identity-v0", "--steps", "100000000", "--checkpoint-every", "100",
            "--keep-checkpoints", "100", "--eval-every", "0", "--run-dir", str(run_dir), "--no-progress"]
    env = {**os.environ, "LINEAR_Q_BALLAST": "150"}
    process = subprocess.Popen([sys.executable, str(HERE / "toolkit_with_linear_q.py"), *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    try:
        while True:  # wait until a checkpoint exists and the next one is half written
            assert time.time() < deadline and process.poll() is None, "no checkpoint write was caught"
            complete = list((run_dir / "checkpoints").glob("step_*.pt"))
            partial = list((run_dir / "checkpoints").glob(".step_*.tmp"))
            if complete and partial and partial[0].stat().st_size > 0:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        process.wait()
    assert list((run_dir / "checkpoints").glob(".step_*.tmp"))  # killed mid-write
    steps = []
    for path in (run_dir / "checkpoints").glob("step_*.pt"):
        steps.append(checkpoint.load(path)["step"])  # every visible checkpoint is whole
    resumed = linear_q("resume", str(run_dir), "--steps", str(max(steps) + 50), env={"LINEAR_Q_BALLAST": "1"})
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming linear-q" in resumed.stderr
    assert not list((run_dir / "checkpoints").glob(".step_*.tmp"))  # cleaned up
    assert checkpoint.load(checkpoint.latest(run_dir))["step"] == max(steps) + 50


def endless_linear_q(run_dir: Path, checkpoint_every: int) -> subprocess.Popen:
    """``train linear-q`` for 10^8 steps in the background, for tests that stop it."""
    return subprocess.Popen(
        [sys.executable, str(HERE / "toolkit_with_linear_q.py"), "train", "linear-q", "--env", "toolkit/Identity-v0",
         "--steps", "100000000", "--run-dir", str(run_dir), "--no-progress", "--checkpoint-every",
         str(checkpoint_every)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigint_checkpoints_and_resume_continues(tmp_path):
    run_dir = tmp_path / "run"
    process = endless_linear_q(run_dir, 0)
    deadline = time.time() + 60
    while not (run_dir / "metrics.jsonl").exists() or (run_dir / "metrics.jsonl").stat().st_size == 0:
        assert time.time() < deadline
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and f"toolkit resume {run_dir}" in stderr  # 128 + SIGINT
    assert json.loads((run_dir / "status.json").read_text())["status"] == "stopped"
    stopped_at = checkpoint.load(checkpoint.latest(run_dir))["step"]
    resumed = linear_q("resume", str(run_dir), "--steps", str(stopped_at + 200))
    assert resumed.returncode == 0, resumed.stderr
    assert "without" not in resumed.stderr
    assert "has no replay buffer" in resumed.stderr  # trained without --save-replay: the user is told
    assert checkpoint.load(checkpoint.latest(run_dir))["step"] == stopped_at + 200
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"
    again = linear_q("resume", str(run_dir))
    assert again.returncode == 2 and "the run finished: it is already at step" in again.stderr


def test_a_locked_run_directory_refuses_a_second_process(tmp_path):
    run_dir = tmp_path / "run"
    process = endless_linear_q(run_dir, 500)
    try:
        deadline = time.time() + 60
        while not list((run_dir / "checkpoints").glob("step_*.pt")):
            assert time.time() < deadline and process.poll() is None
            time.sleep(0.1)
        lines = (run_dir / "metrics.jsonl").read_text().count("\n")
        second = linear_q("resume", str(run_dir), "--steps", "200000000")
        assert second.returncode == 2
        assert f"is in use by another toolkit process (pid {process.pid})" in second.stderr
        assert (run_dir / "metrics.jsonl").read_text().count("\n") >= lines  # not truncated by the refused resume
        into = linear_q("train", "linear-q", "--env", "toolkit/Identity-v0", "--run-dir", str(run_dir), "--no-progress")
        assert into.returncode == 2 and "already holds a run" in into.stderr
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
        assert process.returncode == 143  # 128 + SIGTERM, after its checkpoint
    finally:
        if process.poll() is None:
            process.kill()
    resumed = linear_q("resume", str(run_dir), "--steps", str(checkpoint.load(checkpoint.latest(run_dir))["step"] + 100))
    assert resumed.returncode == 0, resumed.stderr  # the lock died with its process


def test_keep_last_k_checkpoints_and_best(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("train", "random", "--env", "toolkit/Identity-v0", "--steps", "1000", "--checkpoint-every",
                     "100", "--keep-checkpoints", "2", "--eval-every", "250", "--eval-episodes", "1",
                     "--run-dir", str(run_dir), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in checkpoint.list_step_checkpoints(run_dir)] == ["step_000000000900.pt", "step_000000001000.pt"]
    best = checkpoint.load(run_dir / "best.pt")
    evals = [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if "eval/mean_return" in r]
    assert best["best_return"] == max(r["eval/mean_return"] for r in evals)
    assert best["toolkit_version"] and best["plugin"] == "toolkit"


def test_checkpoint_of_another_algorithm_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    assert run_cli("train", "random", "--env", "toolkit/Identity-v0", "--steps", "64", "--eval-episodes", "1",
                   "--run-dir", str(run_dir), "--no-progress").returncode == 0
    config = run_dir / "config.toml"
    config.write_text(config.read_text().replace('algorithm = "random"', 'algorithm = "linear-q"'))
    result = linear_q("resume", str(run_dir), "--steps", "128")
    assert result.returncode == 2
    assert "was written by algorithm 'random', but" in result.stderr and "configures 'linear-q'" in result.stderr


def test_capture_video_writes_a_valid_mp4(tmp_path):
    import imageio_ffmpeg

    run_dir = tmp_path / "video"
    result = run_cli("train", "random", "--env", "CartPole-v1", "--steps", "300", "--eval-every", "0",
                     "--eval-episodes", "2", "--capture-video", "--run-dir", str(run_dir), "--no-progress")
    assert result.returncode == 0, result.stderr
    video = run_dir / "videos" / "eval_step_000000300.mp4"
    assert video.read_bytes()[4:8] == b"ftyp"
    reader = imageio_ffmpeg.read_frames(str(video))
    meta = next(reader)
    frames = list(reader)
    assert meta["size"] == (600, 400) and meta["codec"].startswith("h264") and len(frames) > 5


def test_tracked_run_leaves_an_offline_wandb_run_with_config_metrics_video_and_artifact(tmp_path):
    from wandb_records import read_finished_run

    run_dir = tmp_path / "tracked"
    result = run_cli("train", "random", "--env", "CartPole-v1", "--steps", "400", "--eval-every", "200",
                     "--eval-episodes", "1", "--capture-video", "--track", "--wandb-group", "g1",
                     "--wandb-tags", "smoke,ci", "--run-dir", str(run_dir), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "wandb sync" in result.stderr
    [run_file] = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    records = read_finished_run(run_file)
    kinds = [r.WhichOneof("record_type") for r in records]
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.run_group == "g1" and list(run.tags) == ["smoke", "ci"]
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["algorithm"] == "random" and config["run"]["env"] == "CartPole-v1"
    history = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
               for r in records if r.WhichOneof("record_type") == "history"]
    assert any("train/episode_return" in h for h in history)
    evals = [h for h in history if "eval/mean_return" in h]
    assert [h["global_step"] for h in evals] == [200, 400]
    videos = [h for h in history if h.get("eval/video/_type") == "video-file"]
    assert [v["global_step"] for v in videos] == [200, 400] and videos[0]["eval/video/path"].endswith(".mp4")
    assert "artifact" in kinds


def test_wandb_failure_warns_once_and_training_goes_on(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("train", "random", "--env", "toolkit/Identity-v0", "--steps", "64", "--eval-episodes", "1",
                     "--track", "--run-dir", str(run_dir), "--no-progress", env={"WANDB_MODE": "no-such-mode"})
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("W&B disabled after an error") == 1
    assert (run_dir / "metrics.jsonl").read_text().count("train/episode_return") == 4


def test_plot_three_runs(tmp_path):
    dirs = []
    for seed in (1, 2, 3):
        run_dir = tmp_path / f"r{seed}"
        assert run_cli("train", "random", "--env", "CartPole-v1", "--steps", "1500", "--seed", str(seed),
                       "--eval-every", "500", "--eval-episodes", "2", "--run-dir", str(run_dir),
                       "--no-progress").returncode == 0
        dirs.append(str(run_dir))
    out = tmp_path / "curve.png"
    result = run_cli("plot", *dirs, "--out", str(out))
    assert result.returncode == 0, result.stderr
    from PIL import Image

    image = Image.open(out)
    assert image.format == "PNG" and image.size[0] > 1000
    assert np.asarray(image.convert("L")).std() > 10  # something was drawn


def test_plot_any_logged_metric_and_reject_unknown_ones(tmp_path):
    run_dir = tmp_path / "run"
    assert run_cli("train", "random", "--env", "CartPole-v1", "--steps", "600", "--eval-every", "200",
                   "--eval-episodes", "2", "--run-dir", str(run_dir), "--no-progress").returncode == 0
    from toolkit.plot import read_run

    logged = read_run(run_dir)["metrics"]
    assert logged["eval/mean_return"].shape == (3, 2) and "train/episode_length" in logged
    out = tmp_path / "lengths.png"
    result = run_cli("plot", str(run_dir), "--metric", "train/episode_length", "--metric", "eval/mean_return",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    from PIL import Image

    assert Image.open(out).size[0] > 1000  # two panels side by side
    result = run_cli("plot", str(run_dir), "--metric", "eval/mean_retrun", "--out", str(out))
    assert result.returncode == 2
    assert "no run logged the metric 'eval/mean_retrun'; did you mean eval/mean_return" in result.stderr


def test_plot_of_a_non_run_is_one_line_error(tmp_path):
    result = run_cli("plot", str(tmp_path), "--out", str(tmp_path / "x.png"))
    assert result.returncode == 2 and "is not a toolkit run directory" in result.stderr
