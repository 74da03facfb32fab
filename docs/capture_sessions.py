"""Run a real session with every command and keep its output for the command pages.

    python docs/capture_sessions.py        # ~2 minutes on 2 CPU cores; rewrites docs/sessions.json

The commands run in a temporary directory with relative paths, one after the other (a
CartPole DQN run, then what can be done with it; a small VAE for ``sample``), so the pages
show what a user sees. Rerun it when a command's output changes.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

TOOLKIT = str(Path(sys.executable).with_name("toolkit"))

SESSIONS = {  # command page -> [(title, [command lines])]
    "train": [("Train DQN on CartPole (the `cartpole` preset, shortened), logging to TensorBoard and CSV too", [
        "toolkit train dqn --env CartPole-v1 --steps 6000 --eval-every 3000 --checkpoint-every 3000 "
        "--loggers tensorboard,csv --run-dir runs/cartpole --no-progress",
        "ls runs/cartpole"])],
    "resume": [("Continue the run to a larger budget", [
        "toolkit resume runs/cartpole --steps 9000"])],
    "eval": [("Evaluate the best checkpoint", ["toolkit eval runs/cartpole --episodes 5"])],
    "enjoy": [("Watch two episodes, written to one MP4", [
        "toolkit enjoy runs/cartpole --episodes 2 --video cartpole.mp4"])],
    "export": [("Export the greedy policy to ONNX", [
        "toolkit export runs/cartpole --format onnx --out cartpole.onnx"])],
    "push": [("Write the folder a push would upload (no network needed)", [
        "toolkit push runs/cartpole --repo you/cartpole-dqn --episodes 5 --with-checkpoint --dry-run upload",
        "ls upload"])],
    "pull": [("Pull it back (a local folder stands in for the Hub) and evaluate", [
        "toolkit pull upload --run-dir runs/pulled",
        "toolkit eval runs/pulled --episodes 5"])],
    "sample": [("Samples of a small VAE trained on the 8x8 digits", [
        "toolkit train vae --data digits --steps 500 --run-dir runs/vae --no-progress",
        "toolkit sample runs/vae --n 16 --out samples.png"])],
    "plot": [("The learning curve", ["toolkit plot runs/cartpole --out curve.png"])],
    "config": [("The resolved config of a run", ["toolkit config dqn --env CartPole-v1 --steps 20000"])],
    "list": [("What is installed", ["toolkit list"])],
    "plugins": [("Plugins and what each provides", ["toolkit plugins"])],
}


def run(command: str, cwd: Path) -> str:
    argv = shlex.split(command)
    if argv[0] == "toolkit":
        argv[0] = TOOLKIT
    env = os.environ | {"OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "COLUMNS": "100"}
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return (result.stdout + result.stderr).rstrip()


def main() -> None:
    out: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for page, sessions in SESSIONS.items():
            for title, commands in sessions:
                pairs = []
                for command in commands:
                    print(f"$ {command}", flush=True)
                    pairs.append([command, run(command, Path(tmp))])
                out.setdefault(page, []).append({"title": title, "commands": pairs})
    path = Path(__file__).with_name("sessions.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
