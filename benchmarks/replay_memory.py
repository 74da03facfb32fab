"""Resident memory of a full 1M-transition Atari replay buffer (84x84 frames, 4-frame stacks).

    python benchmarks/replay_memory.py [--capacity 1000000] [--n-envs 8]

Fills every slot through ``ReplayBuffer.add`` with Atari-shaped observations (episodes of
random length, so episode boundaries and final observations are stored as in training),
samples a batch, and prints the process's resident memory. A buffer that stores both
stacks of each transition would need capacity * 2 * 4 * 84 * 84 bytes (about 56 GB).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import psutil
from gymnasium import spaces

from toolkit.replay import ReplayBuffer, UniformSampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=int, default=1_000_000)
    parser.add_argument("--n-envs", type=int, default=8)
    args = parser.parse_args()
    process = psutil.Process()
    baseline = process.memory_info().rss
    obs_space = spaces.Box(0, 255, (4, 84, 84), dtype=np.uint8)
    buffer = ReplayBuffer(args.capacity, obs_space, spaces.Discrete(6), n_envs=args.n_envs, frame_stack=4,
                          sampler=UniformSampler(args.capacity))
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (64, args.n_envs, 4, 84, 84), dtype=np.uint8)  # distinct frames to copy in
    start = time.perf_counter()
    i = 0
    while buffer.added < args.capacity:
        ends = rng.random(args.n_envs) < 1 / 500  # episodes of about 500 steps
        buffer.add(pool[i % 64], rng.integers(6, size=args.n_envs), rng.random(args.n_envs),
                   pool[(i + 1) % 64], ends & (rng.random(args.n_envs) < 0.5), ends)
        i += 1
    fill_seconds = time.perf_counter() - start
    batch = buffer.sample(32)
    rss = process.memory_info().rss
    naive = args.capacity * 2 * 4 * 84 * 84
    print(f"capacity {args.capacity:,} transitions, {args.n_envs} envs, filled in {fill_seconds:.1f} s "
          f"({buffer.added / fill_seconds:,.0f} transitions/s); sampleable: {len(buffer):,}")
    print(f"batch obs {batch.obs.shape} {batch.obs.dtype}")
    print(f"resident memory: {rss / 1e9:.2f} GB (buffer: {(rss - baseline) / 1e9:.2f} GB; "
          f"storing both stacks would need {naive / 1e9:.1f} GB)")


if __name__ == "__main__":
    main()
