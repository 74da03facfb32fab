"""Sharing runs on the Hugging Face Hub: ``toolkit push`` and ``toolkit pull``.

What a pushed repository holds (``toolkit push RUN --dry-run DIR`` writes exactly this folder):

    README.md          the model card: algorithm, env, a fresh evaluation (mean +/- std over
                       N episodes), the command that reproduces the run, the learning curve,
                       versions, the W&B run
    model.safetensors  every tensor of the algorithm's state (weights, and the rest of what
                       its checkpoint holds: optimizer moments, normaliser statistics)
    model.json         everything else of that checkpoint, with a placeholder per tensor
    config.toml        the run's resolved config (``toolkit train ALGO --config config.toml``)
    metrics.jsonl      the run's metrics (the card's curve is drawn from them)
    curve.png          the learning curve (generative runs: their evaluation metrics)
    replay.mp4         one evaluation episode (generative runs: samples.png instead)
    checkpoints/       with ``--with-checkpoint``: the latest full checkpoint, for ``resume``

Nothing in it executes code when loaded: safetensors and JSON for the weights, and the
optional checkpoint is read with ``torch.load(weights_only=True)`` like every checkpoint.
``toolkit pull`` downloads the repository (or copies a local folder of that layout) into a
run directory and rebuilds ``best.pt`` from the safetensors, so ``eval``, ``enjoy``,
``toolkit.load`` and, with a checkpoint, ``resume`` take it like any run.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from toolkit import checkpoint
from toolkit.errors import ToolkitError

WEIGHTS, SKELETON, CARD = "model.safetensors", "model.json", "README.md"
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
# what a shared model needs from a checkpoint; the rest (RNGs, logger, envs, replay) is for resuming
SHARED_ENTRIES = ("format", "algorithm", "plugin", "plugin_version", "toolkit_version", "step", "best_return", "config",
                  "data", "state")


# -- checkpoint <-> safetensors + JSON -------------------------------------------------------


def split_tensors(value: Any, tensors: dict[str, Any], key: str = "") -> Any:
    """``value`` as JSON-able data, each tensor (and numpy array) moved into ``tensors`` under
    a path-like key and replaced by a placeholder; dicts with non-string keys (optimizer
    states) and tuples are tagged so that ``join_tensors`` restores them exactly."""
    import torch

    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):
        tensors[key] = torch.from_numpy(np.ascontiguousarray(value).copy())
        return {"__ndarray__": key}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: split_tensors(v, tensors, f"{key}/{k}" if key else k) for k, v in value.items()}
        return {"__items__": [[k, split_tensors(v, tensors, f"{key}/{k}")] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [split_tensors(v, tensors, f"{key}/{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [split_tensors(v, tensors, f"{key}/{i}") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ToolkitError(f"checkpoint entry {key or '(root)'} is a {type(value).__name__}, which cannot be shared")


def join_tensors(value: Any, tensors: dict[str, Any]) -> Any:
    """``split_tensors``'s inverse."""
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            return tensors[value["__tensor__"]]
        if set(value) == {"__ndarray__"}:
            return tensors[value["__ndarray__"]].numpy()
        if set(value) == {"__items__"}:
            return {k: join_tensors(v, tensors) for k, v in value["__items__"]}
        if set(value) == {"__tuple__"}:
            return tuple(join_tensors(v, tensors) for v in value["__tuple__"])
        return {k: join_tensors(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [join_tensors(v, tensors) for v in value]
    return value


def write_weights(state: dict[str, Any], folder: Path) -> None:
    from safetensors.torch import save_file

    shared = {k: state[k] for k in SHARED_ENTRIES if k in state}
    tensors: dict[str, Any] = {}
    skeleton = split_tensors(shared, tensors)
    save_file(tensors, str(folder / WEIGHTS), metadata={"format": "toolkit", "algorithm": state["algorithm"]})
    (folder / SKELETON).write_text(json.dumps(skeleton, indent=1))


def read_weights(folder: Path) -> dict[str, Any]:
    """The shared checkpoint a pushed folder holds (safetensors + JSON; no code runs)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(folder / WEIGHTS))
        skeleton = json.loads((folder / SKELETON).read_text())
    except (OSError, ValueError, SafetensorError) as exc:
        raise ToolkitError(f"{folder} does not hold toolkit weights ({WEIGHTS} + {SKELETON}): {exc}") from None
    try:
        state = join_tensors(skeleton, tensors)
    except KeyError as exc:
        raise ToolkitError(f"{folder / SKELETON} names tensor {exc} that {WEIGHTS} does not have") from None
    checkpoint.check_entries(state, folder / SKELETON, checkpoint.ENTRIES)
    return state


# -- push ------------------------------------------------------------------------------------


def prepare_folder(run: str | Path, folder: Path, *, repo: str, episodes: int = 10, with_checkpoint: bool = False,
                   video: bool = True) -> dict[str, Any]:
    """Write everything ``push`` would upload for ``run`` into ``folder`` (created; must not
    exist or be empty); returns the card's facts."""
    from toolkit.offline import find_checkpoint, restore_algorithm

    check_repo_id(repo)
    run = Path(run)
    if not (run / "config.toml").is_file():
        raise ToolkitError(f"{run} is not a toolkit run directory (no config.toml); push takes a run directory")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ToolkitError(f"{folder} exists and is not an empty directory; give a new folder")
    latest = checkpoint.latest(run)
    if with_checkpoint and latest is None:
        raise ToolkitError(f"{run} has no step checkpoint (checkpoints/step_*.pt) to include for resuming")
    restored = restore_algorithm(find_checkpoint(run), device="cpu")  # loaded once: weights, evaluation, video
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        facts = _fill_folder(run, folder, restored, repo, episodes, video)
        if with_checkpoint:
            (folder / "checkpoints").mkdir()
            shutil.copy2(latest, folder / "checkpoints" / latest.name)
            facts["checkpoint"] = f"checkpoints/{latest.name}"
        (folder / CARD).write_text(model_card(facts))
    except BaseException:
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            for child in folder.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    return facts


def _fill_folder(run: Path, folder: Path, restored: Any, repo: str, episodes: int, video: bool) -> dict[str, Any]:
    from toolkit.plot import plot_runs

    state = restored.state
    write_weights(state, folder)
    for name in ("config.toml", "metrics.jsonl"):
        if (run / name).is_file():
            shutil.copy2(run / name, folder / name)
    config = state["config"]
    facts: dict[str, Any] = {
        "repo": repo, "algorithm": state["algorithm"], "plugin": state.get("plugin"),
        "plugin_version": state.get("plugin_version"), "toolkit_version": state.get("toolkit_version"),
        "step": state["step"], "checkpoint_name": restored.path.name, "config": config, "wandb": wandb_link(run, config),
    }
    generative = "data" in state
    eval_metrics = _last_eval_metrics(run)
    if (folder / "metrics.jsonl").is_file():
        metrics = None if not generative else sorted(k for k in eval_metrics)[:3] or None
        if not generative or metrics:
            plot_runs([run], folder / "curve.png", metrics=metrics)
            facts["curve"] = "curve.png"
    if generative:
        from toolkit.offline import sample_checkpoint

        facts |= {"dataset": config["run"]["data"], "eval_metrics": eval_metrics}
        sample_checkpoint(restored, 64, folder / "samples.png")
        facts["samples"] = "samples.png"
    else:
        from toolkit.offline import enjoy_checkpoint, evaluate_checkpoint

        result = evaluate_checkpoint(restored, episodes)
        facts |= {"env": result["env"], "env_name": config["run"]["env"], "episodes": result["episodes"],
                  "mean_return": result["mean_return"], "std_return": result["std_return"],
                  "env_kwargs": list(config["run"].get("env_kwargs", []))}
        if video:
            enjoy_checkpoint(restored, 1, video=folder / "replay.mp4")
            facts["video"] = "replay.mp4"
    return facts


def _last_eval_metrics(run: Path) -> dict[str, float]:
    from toolkit.loggers import read_metric_lines

    last: dict[str, float] = {}
    for line in read_metric_lines(run):
        record = json.loads(line)
        last |= {k: v for k, v in record.items() if k.startswith("eval/") and isinstance(v, (int, float))}
    return last


def wandb_link(run: Path, config: dict[str, Any]) -> str | None:
    """The run's W&B page, where it was tracked (``wandb_id.txt``) and the entity is known."""
    id_file = run / "wandb_id.txt"
    if not id_file.is_file():
        return None
    run_config = config.get("run", {})
    entity, project = run_config.get("wandb_entity"), run_config.get("wandb_project") or "toolkit"
    run_id = id_file.read_text().strip()
    return f"https://wandb.ai/{entity}/{project}/runs/{run_id}" if entity else f"W&B project '{project}', run id {run_id}"


def model_card(facts: dict[str, Any]) -> str:
    """The repository's README.md: Hub metadata (front matter) and the card."""
    algo, generative = facts["algorithm"], "dataset" in facts
    subject = facts["dataset"] if generative else facts["env"]
    tags = ["toolkit", algo, subject, "generative-model" if generative else "reinforcement-learning"]
    lines = ["---", "library_name: toolkit", "tags:", *[f"- {tag}" for tag in tags]]
    if not generative:
        lines += ["model-index:", f"- name: {algo}-{subject}", "  results:", "  - task:",
                  "      type: reinforcement-learning", "      name: reinforcement-learning", "    dataset:",
                  f"      name: {subject}", f"      type: {subject}", "    metrics:", "    - type: mean_reward",
                  f"      value: {facts['mean_return']:.2f} +/- {facts['std_return']:.2f}", "      name: mean_reward",
                  "      verified: false"]
    lines += ["---", "", f"# {algo} on {subject}", "",
              f"A **{algo}** {'model' if generative else 'agent'} trained with "
              f"toolkit for {facts['step']:,} {'updates' if generative else 'env steps'} "
              f"(checkpoint `{facts['checkpoint_name']}`).", ""]
    if generative:
        lines += ["| metric | value |", "|---|---|",
                  *[f"| {k} | {v:.4g} |" for k, v in sorted(facts["eval_metrics"].items())], ""]
    else:
        lines += ["| env | evaluation return (mean ± std) | episodes |", "|---|---|---|",
                  f"| {subject} | {facts['mean_return']:.2f} ± {facts['std_return']:.2f} | {facts['episodes']} |", "",
                  "Evaluated when the card was written, with the deterministic policy on the run's evaluation "
                  f"envs: `toolkit eval RUN --episodes {facts['episodes']}` on the pulled run gives the same numbers.",
                  ""]
        if facts.get("env_kwargs"):
            lines += [f"The env is made with `{', '.join(facts['env_kwargs'])}` (`--env-kwargs`, kept in "
                      "`config.toml`).", ""]
    if facts.get("curve"):
        lines += ["## Learning curve", "", f"![learning curve]({facts['curve']})", ""]
    if facts.get("video"):
        lines += [f"An evaluation episode: [{facts['video']}]({facts['video']})", ""]
    if facts.get("samples"):
        lines += [f"![samples]({facts['samples']})", ""]
    local = f"runs/{facts['repo'].split('/')[-1]}"  # where the card's commands pull it to
    use = [f"toolkit pull {facts['repo']} --run-dir {local}"]
    if generative:
        use += [f"toolkit sample {local} --n 64 --out samples.png"]
    else:
        use += [f"toolkit eval {local}",
                f"toolkit enjoy {local} --episodes 3 --video replay.mp4"]
    lines += ["## Use", "", "```bash", *use, "```", "", "```python", "import toolkit",
              f"model = toolkit.load(\"{local}\")",
              "samples = model.sample(16)" if generative else "action = model.predict(observation)", "```", "",
              "## Reproduce", "", "With `config.toml` from this repository (the run's resolved config, seed included):",
              "", "```bash", f"toolkit train {algo} --config config.toml", "```", ""]
    if facts.get("checkpoint"):
        lines += [f"`{facts['checkpoint']}` is the full checkpoint: `toolkit resume {local} --steps N` "
                  "continues training.", ""]
    plugin = f"{facts['plugin']} {facts.get('plugin_version') or ''}".strip() if facts.get("plugin") else "built in"
    lines += ["## Versions", "", f"- toolkit {facts.get('toolkit_version') or 'unknown'}",
              f"- plugin: {plugin}"]
    if facts.get("wandb"):
        lines += [f"- Weights & Biases: {facts['wandb']}"]
    return "\n".join(lines) + "\n"


def check_repo_id(repo: str) -> None:
    if not REPO_ID.match(repo):
        raise ToolkitError(f"--repo {repo!r}: expected a Hub repository id, user/name")


def push(run: str | Path, repo: str, *, episodes: int = 10, with_checkpoint: bool = False, private: bool = False,
         dry_run: Path | None = None) -> dict[str, Any]:
    """Upload ``run`` to the Hub as ``repo`` (or, with ``dry_run``, write the folder only)."""
    if dry_run is not None:
        return prepare_folder(run, dry_run, repo=repo, episodes=episodes, with_checkpoint=with_checkpoint) | {
            "folder": str(dry_run)}
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise ToolkitError("push needs huggingface-hub: pip install 'toolkit[hub]'") from None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "upload"
        facts = prepare_folder(run, folder, repo=repo, episodes=episodes, with_checkpoint=with_checkpoint)
        api = HfApi()
        try:
            api.create_repo(repo, private=private, exist_ok=True)
            commit = api.upload_folder(repo_id=repo, folder_path=str(folder),
                                       commit_message=f"toolkit push: {facts['algorithm']} at step {facts['step']:,}")
        except Exception as exc:  # network, authentication, permissions: one line
            raise ToolkitError(f"upload to {repo} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]} "
                               "(log in with `hf auth login` or set HF_TOKEN)") from None
    return facts | {"url": str(getattr(commit, "commit_url", "") or f"https://huggingface.co/{repo}")}


# -- pull ------------------------------------------------------------------------------------


def pull(source: str, run_dir: Path) -> Path:
    """Download a pushed repository (a Hub id, or a local folder of the pushed layout) into a
    new run directory and rebuild its ``best.pt``."""
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise ToolkitError(f"--run-dir {run_dir} exists and is not empty; pull into a new directory")
    local = Path(source).expanduser()
    if not local.is_dir():
        check_repo_id(source)
    with tempfile.TemporaryDirectory() as tmp:
        folder = local if local.is_dir() else _download(source, Path(tmp) / "download")
        state = read_weights(folder)  # refuse a folder that is not ours before writing anything
        created = not run_dir.exists()
        try:
            shutil.copytree(folder, run_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".cache", ".git*"))
            checkpoint.save(state, run_dir / "best.pt")
        except BaseException:
            if created:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
    return run_dir


def _download(repo: str, folder: Path) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ToolkitError("pull needs huggingface-hub: pip install 'toolkit[hub]'") from None
    try:
        return Path(snapshot_download(repo_id=repo, local_dir=str(folder)))
    except Exception as exc:
        raise ToolkitError(f"download of {repo} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
