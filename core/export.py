"""``toolkit export``: a trained policy as one standalone file, ONNX or TorchScript.

The file maps a batch of observations (input ``obs``: shape (N, *observation shape), the
env's dtype, as ``Agent.predict`` takes them) to the batch of actions (output ``action``) of
the run's deterministic policy: greedy Q-values for value-based agents, the mode for policy
gradients, with the run's observation normalisation and action bounds inside. An algorithm
is exportable when it defines ``policy_module()`` (``toolkit.interfaces.ExportsPolicy``).

The export is checked before it is kept: the file is loaded back (onnxruntime, or
``torch.jit.load``) and must give the policy's own actions on observations of the env under
random play; then it is moved into place, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
CHECK_OBSERVATIONS = 64
"""Observations sampled from the observation space on which the exported file must agree."""


def export_policy(target: str | Path, fmt: str, out: str | Path) -> dict[str, Any]:
    """Export the policy of a run directory or checkpoint to ``out``; returns what was written."""
    import torch

    from toolkit.agent import Agent, load
    from toolkit.interfaces import ExportsPolicy

    if fmt not in FORMATS:
        raise ToolkitError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if fmt == "onnx":
        _require("onnxruntime")
        _require("onnxscript")
    agent = load(target)
    if not isinstance(agent, Agent):
        raise ToolkitError(f"'{agent.algo}' is a generative model; export is for agents' policies")
    if not isinstance(agent.algorithm, ExportsPolicy):
        raise ToolkitError(f"'{agent.algo}' cannot be exported: its policy is not one network (the algorithm does "
                           "not define policy_module(); h-DQN's policy keeps its goals between steps)")
    module = agent.algorithm.policy_module().cpu().eval()
    space = agent.observation_space
    observations = env_observations(agent, CHECK_OBSERVATIONS)
    with torch.no_grad():
        expected = module(torch.as_tensor(observations)).numpy()
    policy_actions = np.asarray(agent.algorithm.policy()(observations))
    if not np.allclose(expected.astype(np.float64), policy_actions.astype(np.float64), atol=1e-5):
        raise ToolkitError(f"'{agent.algo}''s policy_module() does not reproduce its policy() on sampled observations; "
                           "this is a bug in the algorithm's export")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{FORMATS[fmt]}")
    try:
        if fmt == "onnx":
            _write_onnx(module, observations, tmp, agent)
            got = _run_onnx(tmp, observations)
        else:
            with warnings.catch_warnings():  # TorchScript is deprecated in favour of torch.export, and still asked for
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.jit.save(torch.jit.trace(module, torch.as_tensor(observations[:2])), str(tmp))
                with torch.no_grad():
                    got = torch.jit.load(str(tmp)).eval()(torch.as_tensor(observations)).numpy()
        if not np.allclose(got.astype(np.float64), expected.astype(np.float64), atol=1e-4):
            raise ToolkitError(f"the exported {fmt} file's actions differ from the policy's; nothing was written")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return {"file": str(out), "format": fmt, "algorithm": agent.algo, "env": agent.env_id,
            "observation_shape": list(space.shape), "observation_dtype": str(space.dtype),
            "checked_observations": CHECK_OBSERVATIONS}


def env_observations(agent: Any, n: int, seed: int = 0) -> np.ndarray:
    """``n`` observations of the agent's evaluation env under random actions (real ones: an
    observation space's own samples can be far outside anything the policy saw)."""
    env = agent.make_env(seed=seed)
    try:
        obs, _ = env.reset(seed=seed)
        observations = []
        for _ in range(n):
            observations.append(obs)
            obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                obs, _ = env.reset()
    finally:
        env.close()
    return np.stack(observations).astype(agent.observation_space.dtype)


def _require(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ToolkitError(f"--format onnx needs the '{module}' package: pip install 'toolkit[export]'")


def _write_onnx(module: Any, observations: np.ndarray, path: Path, agent: Any) -> None:
    import contextlib
    import io
    import logging

    import onnx
    import torch

    batch = torch.export.Dim("batch")
    # the exporter narrates its passes and warns about optional packages (torchvision's ops)
    quiet_logger = logging.getLogger("torch.onnx")
    level = quiet_logger.level
    quiet_logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.onnx.export(module, (torch.as_tensor(observations[:2]),), str(path), dynamo=True,
                              input_names=["obs"], output_names=["action"], dynamic_shapes={"obs": {0: batch}},
                              external_data=False)
    finally:
        quiet_logger.setLevel(level)
    model = onnx.load(str(path))
    for key, value in (("toolkit_algorithm", agent.algo), ("toolkit_env", agent.env_id), ("toolkit_step", str(agent.step))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def _run_onnx(path: Path, observations: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["action"], {"obs": observations})[0]
