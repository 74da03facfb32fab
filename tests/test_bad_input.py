"""Every bad input a user can type, in one table: exit code 2, one ``error:`` line that says
what is wrong, no traceback, and nothing created or changed on disk.

Each case is ``(argv, phrase)``: the command line (``{name}`` fills in a path from the
``paths`` fixture) and a phrase the error line must contain. ``train`` cases get their own
``--run-dir`` unless they name one. Commands run in-process through ``toolkit.cli.main``, the
CLI's own entry point, in an empty working directory that must stay empty.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from toolkit import checkpoint
from toolkit.cli import main

TRAIN = [
    # names
    (["train", "dqm"], "unknown algorithm 'dqm'; did you mean: dqn"),
    (["train", "randon", "--env", "CartPole-v1"], "unknown algorithm 'randon'; did you mean: random"),
    (["train", "random", "--env", "CartPol-v1"], "unknown env 'CartPol-v1'; did you mean: CartPole-v1"),
    (["train", "random", "--env", ""], "unknown env ''"),
    (["train", "random", "--env", "no_such_module_here:Thing-v0"], "cannot import module 'no_such_module_here'"),
    (["train", "random", "--env", ":Thing-v0"], "expected module:EnvId"),
    (["train", "random", "--loggers", "nope"], "unknown logger 'nope'"),
    (["train", "random", "--loggers", "jsonl,wandbb"], "did you mean: wandb"),
    (["train", "dqn", "--replay", "prioritised"], "unknown sampler 'prioritised'"),
    (["train", "dqn", "--preset", "nature2051"], "unknown preset 'nature2051'"),
    (["train", "ppo", "--preset", "nonee"], "unknown preset 'nonee'; did you mean: none?"),
    (["train", "gan", "--data", "digitz"], "unknown dataset 'digitz'"),
    (["train", "vae", "--data", "mnist", "--data-dir", "{nothing}"], "nothing does not exist"),
    # options and their types
    (["train", "random", "--stepz", "10"], "unknown option '--stepz'; did you mean: --steps"),
    (["train", "random", "--steps", "ten"], "invalid value for --steps: 'ten' is not an integer"),
    (["train", "random", "--steps", "1.5"], "'1.5' is not an integer"),
    (["train", "random", "--seed", "abc"], "'abc' is not an integer"),
    (["train", "random", "--device", "gpu"], "invalid value for --device"),
    (["train", "random", "--device", "mps"], "MPS is not available"),
    (["train", "random", "--vec-env", "threads"], "unknown choice 'threads'; valid: async, sync"),
    (["train", "random", "--on-nonfinite", "ignore"], "unknown choice 'ignore'; valid: stop, warn"),
    (["train", "random", "--progress", "maybe"], "unexpected argument 'maybe'"),
    (["train", "dqn", "--hidden", "a"], "invalid value for --hidden: 'a' is not an integer"),
    (["train", "dqn", "--network", "resnet"], "unknown choice 'resnet'"),
    (["train", "random", "--config", "{missing_toml}"], "does not exist"),
    # run options out of range
    (["train", "random", "--steps", "0"], "--steps must be >= 1, got 0"),
    (["train", "random", "--steps", "-5"], "--steps must be >= 1, got -5"),
    (["train", "random", "--seed", "-1"], "--seed must be >= 0"),
    (["train", "random", "--seed", str(2**64)], "--seed must be >= 0 and <= 4294967295"),
    (["train", "random", "--threads", "-1"], "--threads must be >= 0, got -1"),
    (["train", "random", "--n-envs", "0"], "--n-envs must be >= 1, got 0"),
    (["train", "random", "--eval-every", "-1"], "--eval-every must be >= 0"),
    (["train", "random", "--eval-episodes", "0"], "--eval-episodes must be >= 1"),
    (["train", "random", "--checkpoint-every", "-5"], "--checkpoint-every must be >= 0"),
    (["train", "random", "--keep-checkpoints", "-1"], "--keep-checkpoints must be >= 0"),
    (["train", "random", "--log-every", "-1"], "--log-every must be >= 0"),
    (["train", "random", "--max-episode-steps", "-1"], "--max-episode-steps must be >= 0"),
    (["train", "random", "--wandb-timeout", "0"], "--wandb-timeout must be > 0"),
    (["train", "random", "--wandb-timeout", "nan"], "--wandb-timeout must be a finite number"),
    # dqn
    (["train", "dqn", "--env", "Pendulum-v1"], "discrete action space"),
    (["train", "dqn", "--env", "CartPole-v1", "--network", "nature"], "is a CNN for images (C, H, W) or (H, W, C)"),
    (["train", "dqn", "--learning-rate", "nan"], "--learning-rate must be a finite number, got nan"),
    (["train", "dqn", "--learning-rate", "-1"], "--learning-rate must be > 0, got -1"),
    (["train", "dqn", "--learning-rate", "0"], "--learning-rate must be > 0, got 0"),
    (["train", "dqn", "--learning-rate", "inf"], "--learning-rate must be a finite number, got inf"),
    (["train", "dqn", "--buffer-size", "0"], "--buffer-size must be >= 1, got 0"),
    (["train", "dqn", "--buffer-size", "-1"], "--buffer-size must be >= 1"),
    # more than any machine's memory: refused before numpy tries to allocate it
    (["train", "dqn", "--buffer-size", str(10**13)], "of memory: pass --buffer-size"),
    (["train", "dqn", "--train-frequency", "0"], "--train-frequency must be >= 1"),
    (["train", "dqn", "--hidden", "-3"], "--hidden must be >= 1, got -3"),
    (["train", "dqn", "--hidden", "64,0"], "--hidden must be >= 1, got 0"),
    (["train", "dqn", "--exploration-fraction", "nan"], "--exploration-fraction must be a finite number"),
    (["train", "dqn", "--exploration-fraction", "1.5"], "--exploration-fraction must be"),
    (["train", "dqn", "--exploration-initial", "5"], "--exploration-initial must be >= 0 and <= 1, got 5"),
    (["train", "dqn", "--exploration-final", "-0.1"], "--exploration-final must be >= 0"),
    (["train", "dqn", "--gamma", "nan"], "--gamma must be a finite number"),
    (["train", "dqn", "--gamma", "1.5"], "--gamma must be >= 0 and <= 1, got 1.5"),
    (["train", "dqn", "--gamma", "-0.1"], "--gamma must be >= 0 and <= 1"),
    (["train", "dqn", "--tau", "nan"], "--tau must be a finite number"),
    (["train", "dqn", "--tau", "0"], "--tau must be > 0"),
    (["train", "dqn", "--tau", "2"], "--tau must be > 0 and <= 1"),
    (["train", "dqn", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["train", "dqn", "--rmsprop-alpha", "2"], "--rmsprop-alpha must be >= 0 and < 1, got 2"),
    (["train", "dqn", "--n-step", "0"], "--n-step must be >= 1"),
    (["train", "dqn", "--target-update-interval", "-1"], "--target-update-interval must be >= 0"),
    (["train", "dqn", "--gradient-steps", "0"], "--gradient-steps must be >= 1, or -1"),
    (["train", "dqn", "--learning-starts", "-10"], "--learning-starts must be >= 0"),
    (["train", "dqn", "--max-grad-norm", "nan"], "--max-grad-norm must be a finite number"),
    (["train", "dqn", "--max-grad-norm", "-1"], "--max-grad-norm must be"),
    (["train", "dqn", "--replay", "prioritized:eps=nan"], "eps must be a finite number > 0"),
    (["train", "dqn", "--replay", "prioritized:eps=-1"], "eps must be a finite number > 0"),
    (["train", "dqn", "--replay", "prioritized:alpha"], "must look like name=number"),
    (["train", "dqn", "--replay", "prioritized:zzz=1"], "unknown option of sampler 'prioritized' 'zzz'"),
    (["train", "dqn", "--replay", "rank:alpha=2"], "alpha and beta0 must lie in [0, 1]"),
    (["train", "dqn", "--replay", "prioritized:beta0=-1"], "beta0"),
    # h-DQN
    (["train", "hdqn", "--env", "CartPole-v1"], "needs a goal environment"),
    (["train", "hdqn", "--env", "toolkit/KeyDoor-v0", "--network", "nature"], "is a CNN for images (C, H, W) or (H, W, C)"),
    (["train", "hdqn", "--env", "toolkit/KeyDoor-v0", "--controller-gamma", "2"], "--controller-gamma must be >= 0 and <= 1"),
    (["train", "hdqn", "--env", "toolkit/KeyDoor-v0", "--gamma", "nan"], "--gamma must be a finite number"),
    (["train", "hdqn", "--env", "toolkit/KeyDoor-v0", "--learning-rate", "0"], "--learning-rate must be > 0"),
    (["train", "hdqn", "--env", "toolkit/KeyDoor-v0", "--pretrain-steps", "-1"], "--pretrain-steps must be >= 0"),
    (["train", "hdqn", "--env", "toolkit/KeyDoor-v0", "--controller-buffer-size", "0"], "--controller-buffer-size must be >= 1"),
    (["train", "hdqn", "--env", "toolkit/KeyDoor-v0", "--meta-buffer-size", str(10**13)], "pass --meta-buffer-size"),
    (["train", "hdqn", "--env", "toolkit/KeyDoor-v0", "--batch-size", "0"], "--batch-size must be >= 1"),
    # TRPO
    (["train", "trpo", "--env", "CartPole-v1", "--max-kl", "0"], "--max-kl must be > 0"),
    (["train", "trpo", "--env", "CartPole-v1", "--max-kl", "nan"], "--max-kl must be a finite number"),
    (["train", "trpo", "--env", "CartPole-v1", "--gamma", "2"], "--gamma must be >= 0 and <= 1"),
    (["train", "trpo", "--env", "CartPole-v1", "--gae-lambda", "-1"], "--gae-lambda must be >= 0 and <= 1"),
    (["train", "trpo", "--env", "CartPole-v1", "--cg-iterations", "0"], "--cg-iterations must be >= 1"),
    (["train", "trpo", "--env", "CartPole-v1", "--cg-damping", "-1"], "--cg-damping must be >= 0"),
    (["train", "trpo", "--env", "CartPole-v1", "--n-steps", "0"], "--n-steps must be >= 1"),
    # SVG
    (["train", "svg0", "--env", "CartPole-v1"], "continuous (Box) action space"),
    (["train", "svg1", "--env", "CartPole-v1"], "continuous (Box) action space"),
    (["train", "svginf", "--env", "CartPole-v1"], "continuous (Box) action space"),
    (["train", "svg1", "--env", "InvertedPendulum-v5", "--reward", "known"], "no known differentiable reward"),
    (["train", "svg0", "--env", "Pendulum-v1", "--tau", "0"], "--tau must be > 0 and <= 1"),
    (["train", "svg1", "--env", "Pendulum-v1", "--gamma", "nan"], "--gamma must be a finite number"),
    (["train", "svg1", "--env", "Pendulum-v1", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["train", "svg0", "--env", "Pendulum-v1", "--buffer-size", "0"], "--buffer-size must be >= 1"),
    # GAN and VAE
    (["train", "vae", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["train", "vae", "--batch-size", "100000"], "--batch-size 100000 is more than the 1,437 samples of 'digits'"),
    (["train", "vae", "--learning-rate", "-1"], "--learning-rate must be > 0"),
    (["train", "vae", "--latent-dim", "0"], "--latent-dim must be >= 1"),
    (["train", "gan", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["train", "gan", "--learning-rate", "nan"], "--learning-rate must be a finite number"),
    (["train", "gan", "--latent-dim", "0"], "--latent-dim must be >= 1"),
    (["train", "wgan", "--n-critic", "0"], "--n-critic must be >= 1"),
    (["train", "wgan", "--n-critic", "-2"], "--n-critic must be >= 1, got -2"),
    (["train", "wgan", "--clip", "-1"], "--clip must be >= 0, got -1"),
    (["train", "wgan", "--preset", "gp", "--gradient-penalty", "-1"], "--gradient-penalty must be >= 0"),
    (["train", "wgan", "--betas", "0.5,1.0"], "--betas must be >= 0 and < 1, got 1"),
    (["train", "began", "--gamma", "0"], "--gamma must be > 0 and <= 1"),
    (["train", "infogan", "--categories", "0"], "--categories must be >= 1"),
    (["train", "gmmn", "--bandwidths", "1,-2"], "--bandwidths must be > 0, got -2"),
    (["train", "gan", "--real-label", "0"], "--real-label must be > 0 and <= 1"),
    (["train", "dcgan", "--learning-rate", "-1"], "--learning-rate must be > 0"),
    # run directories
    (["train", "random", "--steps", "100", "--run-dir", "{run}"], "already holds a run (config.toml)"),
    (["train", "random", "--run-dir", "{a_file}"], "exists and is not a directory"),
    (["train", "random", "--run-dir", "{a_file}/run"], "cannot create the run directory"),
    (["train", "random", "--run-dir", "/proc/toolkit-run"], "cannot create the run directory /proc/toolkit-run"),
    (["train", "random", "--run-dir", "/dev/null/run"], "Not a directory"),
    (["train", "random", "--run-dir", "{metrics_only}"], "already holds a run (metrics.jsonl)"),
]

TOML = [  # the same values from --config FILE: the error names the key and the file
    ("[run]\nstepz = 10\n", "random", "unknown config key in"),
    ("[run\nsteps = 10\n", "random", "is not valid TOML"),
    ("[run]\nsteps = 'ten'\n", "random", "steps in"),
    ("[run]\nwandb_timeout = -1.0\n", "random", "wandb_timeout in {toml} must be > 0"),
    ("[run]\nseed = -1\n", "random", "seed in {toml} must be >= 0"),
    ("[run]\nsteps = 0\n", "random", "steps in {toml} must be >= 1"),
    ("[run]\nn_envs = 0\n", "random", "n_envs in {toml} must be >= 1"),
    ("[run]\ndevice = 'gpu'\n", "random", "device"),
    ("[algo]\nlearning_rate = -1.0\n", "dqn", "learning_rate in {toml} must be > 0, got -1"),
    ("[algo]\nlearning_rate = nan\n", "dqn", "learning_rate in {toml} must be a finite number, got nan"),
    ("[algo]\ngamma = inf\n", "dqn", "gamma in {toml} must be a finite number, got inf"),
    ("[algo]\nbuffer_size = 0\n", "dqn", "buffer_size in {toml} must be >= 1"),
    ("[algo]\nhidden = [64, -3]\n", "dqn", "hidden in {toml} must be >= 1, got -3"),
    ("[algo]\nreplay = 'prioritized:eps=-1'\n", "dqn", "eps must be a finite number > 0"),
    ("[algo]\nnetwork = 'nature'\n", "dqn", "is a CNN for images (C, H, W) or (H, W, C)"),
    ("[algo]\nbatch_size = 100000\n", "vae", "--batch-size 100000 is more than"),
    ("[dqn]\nlearning_rate = 0.1\n", "dqn", "unknown config section"),
    ("algorithm = 'trpo'\n", "dqn", "is a config for 'trpo', not 'dqn'"),
    ("preset = 'nature2051'\n", "dqn", "unknown preset 'nature2051'"),
    (b"[run]\nenv = '\xff\xfe'\n", "random", "is not UTF-8 text (byte 13)"),
]

RESUME = [
    (["resume", "{nothing}"], "does not exist"),
    (["resume", "{a_file}"], "does not exist"),
    (["resume", "{empty_dir}"], "is not a toolkit run directory (no config.toml)"),
    (["resume", "{no_algorithm}"], "does not name its algorithm"),
    (["resume", "{run}"], "the run finished: it is already at step 600 of 600; pass --steps N"),
    (["resume", "{run}", "--steps", "300"], "already at step 600 of 300"),
    (["resume", "{run}", "--steps", "0"], "--steps must be >= 1"),
    (["resume", "{run}", "--steps", "abc"], "Invalid value for '--steps'"),
    (["resume", "{run}", "--steps", "1200", "--device", "tpu"], "invalid value for --device: unknown choice 'tpu'; did you mean: cpu?"),
    (["resume", "{run}", "--steps", "1200", "--threads", "-1"], "--threads must be >= 0, got -1"),
    (["resume", "{run}", "--steps", "1200", "--env", "Pong"], "No such option: --env"),  # what it trains stays
    (["resume", "{bad_metrics}", "--steps", "1200"], "metrics.jsonl line 2 is not a metrics record"),
    (["resume", "{binary_metrics}", "--steps", "1200"], "metrics.jsonl is not UTF-8 text"),
    (["resume", "{other_algorithm}", "--steps", "1200"], "was written by algorithm 'dqn', but"),
    (["resume", "{format_only}", "--steps", "1200"], "has no 'algorithm' entry"),
    (["resume", "{no_rng}", "--steps", "1200"], "has no 'rng' entry"),
    (["resume", "{string_step}", "--steps", "1200"], "'step' is str '600', expected a non-negative integer"),
    (["resume", "{bad_logger}", "--steps", "1200"], "the checkpoint's logger state does not fit 'random'"),
    (["resume", "{truncated}", "--steps", "1200"], "is corrupt or truncated"),
    (["resume", "{garbage}", "--steps", "1200"], "is corrupt or truncated"),
    (["resume", "{unsafe}", "--steps", "1200"], "is unsafe: loading it would execute code (print)"),
    (["resume", "{wrong_shapes}", "--steps", "1200"], "the checkpoint's algorithm state does not fit 'dqn'"),
]

EVAL = [
    (["eval", "{nothing}"], "does not exist (expected a run directory or a .pt checkpoint)"),
    (["eval", "{empty_dir}"], "no checkpoint in"),
    (["eval", "{run}", "--episodes", "0"], "--episodes must be >= 1, got 0"),
    (["eval", "{run}", "--seed", "-1"], "--seed must be >= 0"),
    (["eval", "{format_only}/checkpoints/step_000000000600.pt"], "has no 'algorithm' entry"),
    (["eval", "{no_config}"], "has no 'config' entry"),
    (["eval", "{string_step}/checkpoints/step_000000000600.pt"], "'step' is str"),
    (["eval", "{truncated}/checkpoints/step_000000000600.pt"], "is corrupt or truncated"),
    (["eval", "{garbage}/checkpoints/step_000000000600.pt"], "is corrupt or truncated"),
    (["eval", "{unsafe}/checkpoints/step_000000000600.pt"], "is unsafe: loading it would execute code (print)"),
    (["eval", "{a_file}"], "is corrupt or truncated"),
    (["eval", "{not_toolkit}"], "is not a toolkit checkpoint"),
    (["eval", "{wrong_shapes_file}"], "does not fit 'dqn' as its config describes"),
    (["eval", "{foreign_plugin}"], "of plugin 'toolkit-nope' 9.9, which is not installed"),
    (["eval", "{generative}"], "is a generative trainer"),
    (["eval", "{run}", "--episodes", "x"], "Invalid value for '--episodes'"),
]

SAMPLE = [
    (["sample", "{nothing}"], "does not exist"),
    (["sample", "{run}"], "is not a generative trainer; use `toolkit eval`"),
    (["sample", "{generative}", "--n", "0"], "--n must be >= 1 and <= 10000, got 0"),
    (["sample", "{generative}", "--n", "100000"], "--n must be >= 1 and <= 10000, got 100000"),
    (["sample", "{generative}", "--seed", "-1"], "--seed must be >= 0"),
    (["sample", "{generative}", "--out", "{empty_dir}"], "is a directory; give a file name"),
    (["sample", "{generative}", "--out", "{a_file}/x.png"], "is not a directory"),
    (["sample", "{generative}", "--out", "/dev/null/x.png"], "/dev/null is not a directory"),
    (["sample", "{generative}", "--out", "samples.txt"], "the file type '.txt' is not one of .png"),
    (["sample", "{generative}", "--out", "samples"], "the file type '(none)'"),
    (["sample", "{format_only}/checkpoints/step_000000000600.pt"], "has no 'algorithm' entry"),
]

PLOT = [
    (["plot", "{nothing}"], "is not a toolkit run directory"),
    (["plot", "{empty_dir}"], "is not a toolkit run directory"),
    (["plot", "{run}", "--metric", "loss/nope"], "loss/nope"),
    (["plot", "{run}", "--out", "{empty_dir}"], "is a directory; give a file name"),
    (["plot", "{run}", "--out", "curve.txt"], "the file type '.txt' is not one of"),
    (["plot", "{run}", "--out", "{a_file}/curve.png"], "is not a directory"),
    (["plot", "{run}", "--smoothing", "0"], "--smoothing must be >= 1, got 0"),
]

OTHER = [
    (["trian"], "No such command 'trian'"),
    (["config", "dqm"], "unknown algorithm 'dqm'"),
    (["config", "dqn", "--learning-rate", "-1"], "--learning-rate must be > 0"),
    (["config", "dqn", "--env", "Pendulum-v1"], "discrete action space"),
    (["eval"], "Missing argument 'target'"),
    (["resume"], "Missing argument 'run_dir'"),
    (["train", "random", "--steps"], "--steps"),
]

CASES = [*TRAIN, *[(["train", algo, "--config", "{toml}"], (text, phrase)) for text, algo, phrase in TOML],
         *RESUME, *EVAL, *SAMPLE, *PLOT, *OTHER]


def test_the_table_holds_at_least_150_bad_inputs():
    assert len(CASES) >= 150


def _case_id(case) -> str:
    argv, expected = case
    text = " ".join(argv)
    return text + (f" <- {expected[0]!r}" if isinstance(expected, tuple) else "")


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, Path]:
    """The runs and crafted files the cases point at, made once."""
    from toolkit.plugins import reset_registry

    reset_registry()
    root = tmp_path_factory.mktemp("artefacts")
    p = {name: root / name for name in ("nothing", "empty_dir", "a_file", "run", "no_algorithm", "metrics_only")}
    p["empty_dir"].mkdir()
    p["a_file"].write_text("not a run\n")
    common = ["--eval-every", "0", "--eval-episodes", "1", "--no-progress"]
    assert main(["train", "random", "--env", "CartPole-v1", "--steps", "600", "--checkpoint-every", "300",
                 "--run-dir", str(p["run"]), *common]) == 0
    dqn = root / "dqn"
    assert main(["train", "dqn", "--env", "CartPole-v1", "--steps", "600", "--learning-starts", "100",
                 "--run-dir", str(dqn), *common]) == 0
    p["generative"] = root / "vae"
    assert main(["train", "vae", "--steps", "3", "--run-dir", str(p["generative"]), *common]) == 0
    p["no_algorithm"].mkdir()
    (p["no_algorithm"] / "config.toml").write_text("[run]\nsteps = 10\n")
    p["metrics_only"].mkdir()
    (p["metrics_only"] / "metrics.jsonl").write_text('{"step": 1}\n')

    good = checkpoint.load(checkpoint.latest(p["run"]))
    raw = torch.load(checkpoint.latest(p["run"]), weights_only=True)

    def copy_run(name: str) -> Path:
        target = root / name
        shutil.copytree(p["run"], target)
        p[name] = target
        return checkpoint.latest(target)

    lines = (p["run"] / "metrics.jsonl").read_text().splitlines()
    copy_run("bad_metrics")
    (p["bad_metrics"] / "metrics.jsonl").write_text("\n".join([lines[0], "not json", *lines[1:]]) + "\n")
    copy_run("binary_metrics")
    (p["binary_metrics"] / "metrics.jsonl").write_bytes(b"\xff\xfe" + "\n".join(lines).encode())
    shutil.copy(checkpoint.latest(dqn), copy_run("other_algorithm"))
    torch.save({"format": 1}, copy_run("format_only"))
    torch.save({k: v for k, v in raw.items() if k != "rng"}, copy_run("no_rng"))
    torch.save({**raw, "step": "600"}, copy_run("string_step"))
    torch.save({**raw, "logger": {"returns": 5}}, copy_run("bad_logger"))
    data = checkpoint.latest(p["run"]).read_bytes()
    copy_run("truncated").write_bytes(data[: len(data) // 2])
    copy_run("garbage").write_bytes(b"\x00garbage" * 100)

    class RunsCode:
        def __reduce__(self):
            return (print, ("this would run on load",))

    torch.save({**raw, "state": RunsCode()}, copy_run("unsafe"))
    p["no_config"] = root / "no_config.pt"
    torch.save({k: v for k, v in raw.items() if k != "config"}, p["no_config"])
    p["not_toolkit"] = root / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, p["not_toolkit"])
    # A dqn checkpoint of CartPole (4 inputs) whose config says Acrobot (6 inputs).
    dqn_state = checkpoint.load(checkpoint.latest(dqn))
    dqn_state["config"]["run"]["env"] = "Acrobot-v1"
    p["wrong_shapes_file"] = checkpoint.save(dqn_state, root / "acrobot_with_cartpole_weights.pt")
    p["wrong_shapes"] = root / "wrong_shapes"
    shutil.copytree(dqn, p["wrong_shapes"])
    (p["wrong_shapes"] / "config.toml").write_text((dqn / "config.toml").read_text().replace("CartPole-v1", "Acrobot-v1"))
    p["foreign_plugin"] = checkpoint.save({**good, "plugin": "toolkit-nope", "plugin_version": "9.9"},
                                          root / "foreign.pt")
    p["missing_toml"] = root / "missing.toml"
    return p


def _tree(directory: Path) -> dict[str, tuple]:
    """Every file and folder under ``directory``: kind, size, modification time."""
    return {str(q.relative_to(directory)): (q.is_dir(), q.stat().st_size if q.is_file() else 0, q.stat().st_mtime_ns)
            for q in sorted(directory.rglob("*"))}


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_bad_input_is_refused_in_one_line_with_exit_2_and_nothing_changes(case, paths, tmp_path, monkeypatch, capsys):
    argv, expected = case
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    names = {k: str(v) for k, v in paths.items()}
    if isinstance(expected, tuple):  # a TOML case: (file text, phrase)
        text, expected = expected
        toml = tmp_path / "bad.toml"
        toml.write_bytes(text if isinstance(text, bytes) else text.encode())
        names["toml"] = str(toml)
        expected = expected.format(toml=toml)
    argv = [a.format(**names) for a in argv]
    if argv[0] == "train" and "--run-dir" not in argv:
        argv += ["--run-dir", str(work / "run")]
    artefacts = paths["run"].parent
    before = _tree(artefacts)
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], err
    assert "Traceback" not in err and "\x1b[" not in err and "this would run" not in out
    assert _tree(artefacts) == before
    assert not any(work.iterdir()), list(work.iterdir())
