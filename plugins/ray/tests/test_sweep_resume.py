"""A sweep whose driver is SIGKILLed carries on with --resume: finished trials are kept, the
others continue from their checkpoints, and every trial ends as it would have uninterrupted."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolkit.cli import main

# In a parallel suite (pytest -n) the sweep tests run one after another in one worker: each
# starts its own local Ray (or cluster) sized to the whole machine.
pytestmark = pytest.mark.xdist_group("ray")

IDENTITY = ["--env", "toolkit/Identity-v0", "--steps", "4000", "--learning-starts", "100", "--eval-every", "500",
            "--eval-episodes", "2", "--checkpoint-every", "500", "--threads", "1", "--save-replay"]


def metrics_without_perf(run_dir: Path) -> list[dict]:
    records = [{k: v for k, v in json.loads(line).items() if not k.startswith("perf/")}
               for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if len(r) > 1]


def statuses(directory: Path) -> dict[str, str]:
    found = {}
    for path in (directory / "runs").glob("*/status.json"):
        try:
            found[path.parent.name] = json.loads(path.read_text())["status"]
        except ValueError:
            pass
    return found


def trial_logs(directory: Path) -> str:
    """Every trial's log, for a failure's message."""
    return "\n".join(f"--- {path}\n{path.read_text(errors='replace')}"
                     for path in sorted((directory / "runs").glob("*/trial.log")))


def ready_to_kill(directory: Path) -> bool:
    found = statuses(directory)
    if "finished" not in found.values():
        return False
    for trial, status in found.items():
        saved = sorted((directory / "runs" / trial / "checkpoints").glob("step_*.pt"))
        if status == "running" and saved and int(saved[-1].stem.split("_")[1]) <= 1500:
            return True  # at least 2,500 steps to go: it cannot finish before it sees the driver gone
    return False


def test_sigkill_of_the_driver_then_resume_completes_every_trial_once(tmp_path):
    directory = tmp_path / "sweep"
    driver = subprocess.Popen([sys.executable, "-m", "toolkit.cli", "sweep", "dqn", *IDENTITY, "--seeds", "4",
                               "--concurrency", "2", "--sweep-dir", str(directory)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                              env={**os.environ, "WANDB_MODE": "offline"})
    deadline = time.time() + 240
    try:  # kill it once one trial has finished and another is running, well before its end, with a checkpoint
        while not ready_to_kill(directory):
            assert time.time() < deadline and driver.poll() is None, statuses(directory)
            time.sleep(0.2)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
    # the running trials see their driver gone, and stop with a checkpoint
    while "running" in statuses(directory).values():
        assert time.time() < deadline, statuses(directory)
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)  # what is left of the killed driver's Ray
    stopped = {t for t, s in statuses(directory).items() if s == "stopped"}
    finished_before = {t for t, s in statuses(directory).items() if s == "finished"}
    assert stopped and finished_before
    untouched = {t: (directory / "runs" / t / "metrics.jsonl").stat().st_mtime_ns for t in finished_before}

    assert main(["sweep", "--resume", str(directory)]) == 0
    rows = list(csv.DictReader(open(directory / "summary.csv")))
    assert sorted(r["seed"] for r in rows) == ["0", "1", "2", "3"] and {r["status"] for r in rows} == {"finished"}, \
        trial_logs(directory)
    for trial in stopped:  # continued from its checkpoint
        assert "resuming dqn" in (directory / "runs" / trial / "trial.log").read_text()
    for trial in finished_before:  # not run again
        assert (directory / "runs" / trial / "metrics.jsonl").stat().st_mtime_ns == untouched[trial]
    for row in (r for r in rows if r["trial"] in stopped):  # a continued trial equals its seed's standalone run
        standalone = tmp_path / f"seed{row['seed']}"
        assert main(["train", "dqn", *IDENTITY, "--seed", row["seed"], "--run-dir", str(standalone),
                     "--no-progress"]) == 0
        assert metrics_without_perf(Path(row["run_dir"])) == metrics_without_perf(standalone), row


def test_sigint_to_the_driver_stops_every_running_trial_at_a_checkpoint(tmp_path):
    directory = tmp_path / "sweep"
    driver = subprocess.Popen([sys.executable, "-m", "toolkit.cli", "sweep", "random", "--env", "toolkit/Identity-v0",
                               "--steps", "100000000", "--checkpoint-every", "2000", "--eval-every", "0", "--seeds", "2",
                               "--concurrency", "2", "--sweep-dir", str(directory)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                              env={**os.environ, "WANDB_MODE": "offline"})
    deadline = time.time() + 120
    try:
        while not (len(statuses(directory)) == 2 and all(
                list((directory / "runs" / t / "checkpoints").glob("step_*.pt")) for t in statuses(directory))):
            assert time.time() < deadline and driver.poll() is None, statuses(directory)
            time.sleep(0.2)
        driver.send_signal(signal.SIGINT)
        _, stderr = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # anything of its Ray still around
        except ProcessLookupError:
            pass
    assert driver.returncode == 130, stderr
    assert f"Continue with: toolkit sweep --resume {directory}" in stderr
    assert set(statuses(directory).values()) == {"stopped"}  # each trial wrote its stop checkpoint


def test_a_resumed_trial_waits_while_an_earlier_process_of_it_runs(tmp_path):
    """Killed as it started a trial, a sweep can leave that trial's process starting up (its run
    not locked yet): the resumed sweep must not start the trial beside it."""
    from toolkit_ray.sweep import _wait_for_trial_process

    earlier = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                                "from toolkit.rundir import RunDirLock; from toolkit_ray.sweep import TRIAL_LOCK; "
                                "RunDirLock(Path(sys.argv[1]), TRIAL_LOCK); print(flush=True); "
                                "time.sleep(1.5)", str(tmp_path)], stdout=subprocess.PIPE)
    earlier.stdout.readline()  # it holds the trial's lock
    began = time.monotonic()
    _wait_for_trial_process(tmp_path, timeout=30)
    assert earlier.poll() is not None and 1.0 < time.monotonic() - began < 10


def start_trial_process(run_dir: Path, requester: int) -> subprocess.CompletedProcess:
    """``_toolkit_main`` as a sweep's forkserver runs it, for a random-agent run in ``run_dir``."""
    argv = ["train", "random", "--env", "CartPole-v1", "--steps", "50", "--run-dir", str(run_dir), "--no-progress"]
    return subprocess.run([sys.executable, "-c", "import json, sys; from toolkit_ray.sweep import _toolkit_main; "
                           "_toolkit_main(json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]))",
                           json.dumps(argv), str(run_dir), str(requester)], timeout=120)


def test_a_trial_process_leaves_untouched_when_its_trial_runs_elsewhere_or_its_worker_is_gone(tmp_path):
    from toolkit.rundir import RunDirLock
    from toolkit_ray.sweep import EXIT_NOT_WANTED, TRIAL_LOCK

    run_dir = tmp_path / "trial"
    run_dir.mkdir()
    held = RunDirLock(run_dir, TRIAL_LOCK)  # another process of the trial runs
    assert start_trial_process(run_dir, os.getpid()).returncode == EXIT_NOT_WANTED
    held.release()
    gone = subprocess.Popen(["true"])
    gone.wait()  # the Ray worker that asked for it died before it started
    assert start_trial_process(run_dir, gone.pid).returncode == EXIT_NOT_WANTED
    assert not (run_dir / "config.toml").exists() and not (run_dir / "trial.log").exists()

    assert start_trial_process(run_dir, os.getpid()).returncode == 0  # wanted: it runs
    assert (run_dir / "config.toml").exists() and "done: 50 steps" in (run_dir / "trial.log").read_text()
