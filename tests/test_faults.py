"""Fault tests: what a run does when the env, a logger, the disk or a signal fails it, and
that the run can be continued afterwards."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import linear_q
from toolkit import checkpoint, hookimpl
from toolkit.cli import main
from toolkit.plugins import get_registry

HERE = Path(__file__).parent
FAULTY = ["--env", "faulty_envs:Faulty-v0", "--no-progress", "--eval-episodes", "1"]


def statuses(run_dir: Path) -> str:
    return json.loads((run_dir / "status.json").read_text())["status"]


@pytest.fixture
def with_linear_q():
    get_registry().add_plugin("linear-q-test", linear_q, "0", builtin=False)


def test_an_env_raising_mid_run_fails_after_an_emergency_checkpoint_and_resume_completes(
        with_linear_q, tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    monkeypatch.setenv("FAULTY_RAISE_AT", "251")
    code = main(["train", "linear-q", *FAULTY, "--steps", "400", "--checkpoint-every", "100", "--eval-every", "0",
                 "--keep-checkpoints", "1", "--run-dir", str(run_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("error: the env failed at step 250: RuntimeError: sensor unplugged (")
    assert "faulty_envs.py:" in err[-1] and f"toolkit resume {run_dir}" in err[-1]
    assert "saved step_000000000250.pt" in err[-1]
    kept = [p.name for p in checkpoint.list_step_checkpoints(run_dir)]
    assert kept == ["step_000000000200.pt", "step_000000000250.pt"]  # the periodic one is not pruned
    assert statuses(run_dir) == "failed"
    assert json.loads((run_dir / "status.json").read_text())["reason"].startswith("the env failed at step 250")

    monkeypatch.delenv("FAULTY_RAISE_AT")  # the env is fixed
    assert main(["resume", str(run_dir)]) == 0
    err = capsys.readouterr().err
    assert "env state could not be saved (the env failed at step 250)" in err
    assert checkpoint.load(checkpoint.latest(run_dir))["step"] == 400 and statuses(run_dir) == "finished"
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 400


def test_an_exception_in_the_algorithm_is_one_line_with_a_traceback_file(with_linear_q, tmp_path, capsys, monkeypatch):
    def broken_update(self, step):
        if step >= 150:
            raise ValueError("shapes do not match")
        return {}

    monkeypatch.setattr(linear_q.LinearQ, "update", broken_update)
    run_dir = tmp_path / "run"
    code = main(["train", "linear-q", *FAULTY, "--steps", "400", "--checkpoint-every", "100", "--eval-every", "0",
                 "--run-dir", str(run_dir)])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert line.startswith("error: 'linear-q' failed: ValueError: shapes do not match (")
    assert "test_faults.py:" in line and "step_000000000100.pt, is intact" in line
    assert "ValueError: shapes do not match" in (run_dir / "traceback.txt").read_text()
    assert [p.name for p in checkpoint.list_step_checkpoints(run_dir)] == ["step_000000000100.pt"]


class RaisingLogger:
    """A plugin logger that fails on its third line."""

    def __init__(self, run_dir, config):
        self.calls = 0

    def log(self, step, metrics):
        self.calls += 1
        if self.calls == 3:
            raise ConnectionError("dashboard unreachable")

    def log_media(self, step, media):
        pass

    def close(self):
        pass


class RaisingLoggerPlugin:
    @hookimpl
    def register_loggers(self, register):
        register("flaky", RaisingLogger, "Fails on its third line (test)")


def test_a_raising_logger_is_disabled_with_a_warning_and_training_goes_on(tmp_path, capsys):
    get_registry().add_plugin("flaky-logger", RaisingLoggerPlugin(), "0", builtin=False)
    run_dir = tmp_path / "run"
    code = main(["train", "random", *FAULTY, "--steps", "300", "--log-every", "50", "--loggers", "flaky",
                 "--run-dir", str(run_dir)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "warning: logger RaisingLogger disabled after an error in log(): ConnectionError: dashboard unreachable" in err
    assert statuses(run_dir) == "finished"
    assert json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 300


def _small_filesystem(path: Path) -> bool:
    """A 256 KiB tmpfs at ``path`` where the machine allows mounting one (root, a capability)."""
    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(path)],
                          capture_output=True).returncode == 0 if shutil.which("mount") else False


def test_a_full_disk_is_one_line_and_every_earlier_checkpoint_stays_loadable(tmp_path):
    """ENOSPC on a small filesystem where one can be mounted, else the same failure injected at
    the OS level: a file-size limit (RLIMIT_FSIZE) that makes writes past 256 KiB fail (EFBIG)."""
    disk = tmp_path / "disk"
    mounted = _small_filesystem(disk)
    run_dir = disk / "run"
    limit = None if mounted else (lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, 256 << 10)))
    args = [sys.executable, str(HERE / "toolkit_with_linear_q.py"), "train", "linear-q", *FAULTY,
            "--steps", "100000", "--log-every", "1", "--checkpoint-every", "500", "--keep-checkpoints", "50",
            "--eval-every", "0", "--run-dir", str(run_dir)]
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=300, preexec_fn=limit,
                                env={**os.environ, "PYTHONPATH": str(HERE)})
        assert result.returncode == 1, result.stderr
        line = result.stderr.strip().splitlines()[-1]
        reason = "No space left on device" if mounted else "File too large"
        assert line.startswith(f"error: cannot write {run_dir}/") and reason in line, line
        assert "is intact; continue with: toolkit resume" in line and "Traceback" not in result.stderr
        saved = checkpoint.list_step_checkpoints(run_dir)
        assert saved and not list((run_dir / "checkpoints").glob(".*.tmp"))
        last = max(checkpoint.load(path)["step"] for path in saved)  # every one whole
        if mounted:
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        resumed = subprocess.run([*args[:2], "resume", str(run_dir), "--steps", str(last + 100)],
                                 capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(HERE)})
        assert resumed.returncode == 0, resumed.stderr
        assert checkpoint.load(checkpoint.latest(run_dir))["step"] == last + 100
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)])


def _start_in_background(args: list[str], tmp_path: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HERE / "toolkit_with_linear_q.py"), *args], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(HERE), "WANDB_MODE": "offline", **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.05)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_start_up_exits_128_plus_it_and_leaves_nothing(sig, code, tmp_path):
    started = tmp_path / "started"
    process = _start_in_background(["train", "random", "--env", "faulty_envs:SlowStart-v0", "--steps", "100",
                                    "--run-dir", str(tmp_path / "run")], tmp_path, FAULTY_STARTED=str(started))
    try:
        _wait_for(started.exists, process)
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == code, stderr
    assert stderr.strip().splitlines()[-1] == f"error: stopped by {signal.Signals(sig).name}"
    assert "Traceback" not in stderr and not (tmp_path / "run").exists()


def test_a_run_killed_before_its_first_checkpoint_starts_over_on_resume(tmp_path):
    run_dir = tmp_path / "run"
    process = _start_in_background(["train", "linear-q", *FAULTY, "--steps", "100000000", "--log-every", "50",
                                    "--checkpoint-every", "0", "--run-dir", str(run_dir)], tmp_path)
    metrics = run_dir / "metrics.jsonl"
    _wait_for(lambda: metrics.exists() and metrics.stat().st_size > 0, process)
    process.kill()
    process.communicate()
    assert not checkpoint.list_step_checkpoints(run_dir)
    resumed = run_cli_linear_q("resume", str(run_dir), "--steps", "300")
    assert resumed.returncode == 0, resumed.stderr
    assert "has no checkpoint: its start was stopped before the first one; starting it over from step 0" in resumed.stderr
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 300  # the killed start's lines are gone
    assert statuses(run_dir) == "finished"


def run_cli_linear_q(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HERE / "toolkit_with_linear_q.py"), *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(HERE), "WANDB_MODE": "offline"})


def test_wandb_at_a_closed_port_falls_back_to_offline_within_the_bounded_wait(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if not key.startswith("WANDB_")}
    env.update(WANDB_API_KEY="a" * 40, WANDB_BASE_URL=f"http://127.0.0.1:{port}", WANDB_SILENT="true")
    run_dir = tmp_path / "run"
    began = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "toolkit.cli", "train", "random", "--env", "CartPole-v1",
                             "--steps", "50", "--track", "--wandb-timeout", "3", "--no-progress", "--run-dir",
                             str(run_dir)], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert "W&B did not answer within 3 s" in result.stderr and "wandb sync" in result.stderr
    assert list((run_dir / "wandb").glob("offline-run-*"))
    assert elapsed < 60  # wandb's own default waits 90 s


def test_a_sigterm_once_every_step_is_done_leaves_a_finished_run(with_linear_q, tmp_path, capsys, monkeypatch):
    """A sweep stops a trial as it reports its last evaluation: the SIGTERM reaches the run while
    it writes its final checkpoint, or while it closes. Every step was done: the run is finished
    (exit 0, status written), not stopped halfway through writing its status."""
    from toolkit.run import Run

    final_checkpoint, close = Run.checkpoint, Run._close

    def checkpoint_then_sigterm(self, step, *args, **kwargs):
        final_checkpoint(self, step, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)

    def sigterm_then_close(self, *args):
        os.kill(os.getpid(), signal.SIGTERM)
        close(self, *args)

    monkeypatch.setattr(Run, "checkpoint", checkpoint_then_sigterm)
    monkeypatch.setattr(Run, "_close", sigterm_then_close)
    run_dir = tmp_path / "run"
    code = main(["train", "linear-q", *FAULTY, "--steps", "300", "--eval-every", "300", "--checkpoint-every", "0",
                 "--run-dir", str(run_dir)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"done: 300 steps; results in {run_dir}" in err and "stopped" not in err
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"
    assert checkpoint.load(checkpoint.latest(run_dir))["step"] == 300
    assert 300 in [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
                   if "eval/mean_return" in line]
