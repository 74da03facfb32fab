"""The CLI as users meet it: every command in a fresh process."""

import json
import signal
import subprocess
import sys
import time
import tomllib

import pytest

from conftest import run_cli


@pytest.fixture(scope="module")
def existing_run(tmp_path_factory):
    """A finished short run that bad commands must leave untouched."""
    run_dir = tmp_path_factory.mktemp("runs") / "existing"
    result = run_cli("train", "random", "--env", "CartPole-v1", "--steps", "600", "--eval-every", "0",
                     "--eval-episodes", "2", "--checkpoint-every", "300", "--run-dir", str(run_dir), "--no-progress")
    assert result.returncode == 0, result.stderr
    return run_dir


def test_train_writes_config_metrics_and_checkpoints(existing_run):
    config = tomllib.loads((existing_run / "config.toml").read_text())
    assert config["algorithm"] == "random" and config["run"]["steps"] == 600 and config["algo"] == {}
    records = [json.loads(line) for line in (existing_run / "metrics.jsonl").read_text().splitlines()]
    assert all("step" in r for r in records)
    assert any("train/episode_return" in r for r in records) and any("perf/sps" in r for r in records)
    assert any("eval/mean_return" in r for r in records)
    # wall-clock since the run began, on metric and evaluation lines, never going back
    clock = [r["perf/elapsed_s"] for r in records if "perf/elapsed_s" in r]
    assert all("perf/elapsed_s" in r for r in records if "perf/sps" in r or "eval/mean_return" in r)
    assert clock == sorted(clock) and 0 < clock[-1] < 120
    steps = sorted(p.name for p in (existing_run / "checkpoints").glob("step_*.pt"))
    assert steps == ["step_000000000300.pt", "step_000000000600.pt"]
    assert (existing_run / "best.pt").is_file()


def test_checkpoints_load_without_executing_code(existing_run):
    import torch

    state = torch.load(existing_run / "checkpoints" / "step_000000000600.pt", weights_only=True)
    assert state["algorithm"] == "random" and state["step"] == 600 and state["plugin"] == "toolkit"


def test_eval_json(existing_run):
    result = run_cli("eval", str(existing_run), "--episodes", "3", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["episodes"] == 3 and len(report["returns"]) == 3
    assert report["mean_return"] == pytest.approx(sum(report["returns"]) / 3)
    assert {"std_return", "checkpoint", "env"} <= set(report)


def test_eval_stochastic_of_an_algorithm_without_one_is_refused(existing_run):
    result = run_cli("eval", str(existing_run), "--stochastic")
    assert result.returncode == 2 and result.stdout == ""
    assert "'random' has no stochastic policy" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_resume_continues_and_appends(tmp_path):
    run_dir = tmp_path / "run"
    first = run_cli("train", "random", "--env", "toolkit/Identity-v0", "--steps", "200", "--eval-every", "0",
                    "--eval-episodes", "1", "--run-dir", str(run_dir), "--no-progress")
    assert first.returncode == 0, first.stderr
    before = (run_dir / "metrics.jsonl").read_text()
    again = run_cli("resume", str(run_dir), "--steps", "400", "--threads", "1", "--device", "cpu")
    assert again.returncode == 0, again.stderr
    after = (run_dir / "metrics.jsonl").read_text()
    assert after.startswith(before) and len(after) > len(before)
    records = [json.loads(line) for line in after.splitlines()]
    assert max(r["step"] for r in records) == 400
    assert (run_dir / "checkpoints" / "step_000000000400.pt").exists()
    resumed = tomllib.loads((run_dir / "config.toml").read_text())["run"]
    assert (resumed["steps"], resumed["threads"], resumed["device"], resumed["progress"]) == (400, 1, "cpu", False)
    done = run_cli("resume", str(run_dir))
    assert done.returncode == 2 and "already at step 400" in done.stderr


def test_sigint_checkpoints_and_exits_cleanly(tmp_path):
    run_dir = tmp_path / "interrupted"
    process = subprocess.Popen(
        [sys.executable, "-m", "toolkit.cli", "train", "random", "--env", "CartPole-v1", "--steps", "100000000",
         "--run-dir", str(run_dir), "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (run_dir / "metrics.jsonl").exists() or (run_dir / "metrics.jsonl").stat().st_size == 0:
        assert time.time() < deadline, "training never started"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr  # stopped by SIGINT (128 + 2), after its checkpoint
    assert f"toolkit resume {run_dir}" in stderr
    assert list((run_dir / "checkpoints").glob("step_*.pt"))


def test_config_prints_resolved_toml():
    result = run_cli("config", "random", "--env", "Pong", "--steps", "5000")
    assert result.returncode == 0, result.stderr
    document = tomllib.loads(result.stdout)
    assert document["algorithm"] == "random" and document["run"]["env"] == "Pong" and document["run"]["steps"] == 5000


def test_train_help_lists_generated_options():
    result = run_cli("train", "random", "--help")
    assert result.returncode == 0
    assert "--steps INT" in result.stdout and "Total env steps" in result.stdout and "--track/--no-track" in result.stdout


def test_list_and_help_do_not_import_heavy_modules():
    code = ("import sys; from toolkit.cli import main; main(['list']); main(['--help']);"
            "heavy = {'torch', 'gymnasium', 'ale_py', 'wandb', 'ray', 'optuna'} & set(sys.modules); print(sorted(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "random" in result.stdout and "atari" in result.stdout


def test_unknown_command_is_one_line_error():
    result = run_cli("trian")
    assert result.returncode == 2 and "No such command 'trian'" in result.stderr and "Traceback" not in result.stderr


def test_unsafe_checkpoint_is_called_unsafe_and_named(tmp_path):
    import torch

    class RunsCode:
        def __reduce__(self):
            return (print, ("this would run on load",))

    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "algorithm": "random", "state": RunsCode()}, path)
    result = run_cli("eval", str(path))
    assert result.returncode == 2 and "this would run" not in result.stdout
    line = result.stderr.strip()
    assert line == f"error: checkpoint {path} is unsafe: loading it would execute code (print); toolkit loads " \
                   "weights and plain data only"
    assert "\x1b[" not in result.stderr


def test_a_warning_for_the_user_is_one_line_like_an_error(tmp_path):
    """PPO's auto network on non-Atari images warns; the CLI prints it as `warning: ...` (no
    source path, no code line), and leaves Python's formatting as it was for the caller."""
    result = run_cli("train", "ppo", "--env", "toolkit/ImageIdentity-v0", "--steps", "64", "--n-steps", "32",
                     "--batch-size", "32", "--eval-every", "0", "--eval-episodes", "1", "--run-dir",
                     str(tmp_path / "r"), "--no-progress")
    assert result.returncode == 0, result.stderr
    warning_lines = [line for line in result.stderr.splitlines() if "--network nature" in line]
    assert warning_lines == ["warning: toolkit/ImageIdentity-v0 gives images (40, 40, 3); --network auto reads them "
                             "with MLPs over raw pixels (it picks the CNN for Atari's (C, 84, 84) frames only; "
                             "--network nature reads them with the Nature CNN)"]
    assert "UserWarning" not in result.stderr


def test_main_restores_the_warning_format_of_its_caller():
    import warnings

    from toolkit.cli import main

    before = warnings.formatwarning
    assert main(["list"]) == 0
    assert warnings.formatwarning is before
