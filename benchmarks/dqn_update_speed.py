"""Milliseconds per DQN update (batch 32, one torch thread) for the memory layout and the
compiled optimizer step, with toolkit's own Q-learner and networks.

    python benchmarks/dqn_update_speed.py [--network minatar|nature] [--optimizer rmsprop|adam] [--updates 2000]

Times ``QLearner.td_step`` (target forward, online forward, backward, optimizer step) on random
observations of the network's input shape, for channels-last on and off and
``--compile-optimizer`` on and off, and the optimizer step alone. The layout rows force the
format directly, whatever ``memory_format_for`` would choose.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from gymnasium import spaces

from toolkit_dqn.dqn import DQNConfig, QLearner, TDUpdate, build_q_network, make_optimizer

SHAPES = {"minatar": (4, 10, 10), "nature": (4, 84, 84)}


def time_updates(config: DQNConfig, memory_format: torch.memory_format, updates: int) -> tuple[float, float]:
    """(ms per td_step, ms per optimizer step within it)."""
    shape = SHAPES[config.network]
    space = spaces.Box(0, 1, shape, np.uint8)
    torch.manual_seed(0)
    learner = QLearner(lambda: build_q_network(config, space, 6), lambda p: make_optimizer(config, p),
                       TDUpdate("huber", False, 0.0, 1.0), torch.device("cpu"), memory_format=memory_format,
                       compile_optimizer=config.compile_optimizer)
    obs = torch.randint(0, 2, (32, *shape), dtype=torch.uint8).contiguous(memory_format=memory_format)
    action, reward, discount, weights = torch.randint(0, 6, (32,)), torch.rand(32), torch.full((32,), 0.99), torch.ones(32)
    optimizer_seconds = 0.0
    step = learner.optimizer_step

    def timed_step() -> None:
        nonlocal optimizer_seconds
        began = time.perf_counter()
        step()
        optimizer_seconds += time.perf_counter() - began

    learner.optimizer_step = timed_step
    for _ in range(50):  # warm-up, and the compilation if any
        learner.td_step(obs, action, reward, discount, obs, weights)
    optimizer_seconds = 0.0
    began = time.perf_counter()
    for _ in range(updates):
        learner.td_step(obs, action, reward, discount, obs, weights)
    return 1000 * (time.perf_counter() - began) / updates, 1000 * optimizer_seconds / updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="minatar", choices=list(SHAPES))
    parser.add_argument("--optimizer", default="rmsprop", choices=["rmsprop", "adam"])
    parser.add_argument("--updates", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"| {args.network} network, {args.optimizer} | ms per update | of which optimizer step |")
    print("|---|---|---|")
    for layout, memory_format in (("channels-last", torch.channels_last), ("contiguous", torch.contiguous_format)):
        for compiled in (False, True):
            config = DQNConfig(network=args.network, optimizer=args.optimizer, optimizer_eps=0.01,
                               learning_rate=2.5e-4, compile_optimizer=compiled)
            total, optimizer = time_updates(config, memory_format, args.updates)
            label = f"{layout}{', --compile-optimizer' if compiled else ''}"
            print(f"| {label} | {total:.2f} | {optimizer:.2f} |", flush=True)


if __name__ == "__main__":
    main()
