"""Prioritized replay speed.

    python benchmarks/per_speed.py samplers [--capacity 1000000]
    python benchmarks/per_speed.py pong [--steps 4000]

``samplers``: with every slot of a 1M-capacity sampler holding a transition, the time of one
"sample a batch of 32 + update 32 priorities" round (the work PER adds to each DQN update),
for the proportional and the rank-based sampler, next to the uniform one.
``pong``: DQN's env steps/s on Pong during training with --replay prioritized against
--replay uniform, same hyperparameters, same run; prints the ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def sampler_round_trip(capacity: int, rounds: int) -> None:
    from toolkit.replay import UniformSampler
    from toolkit_per.per import ProportionalSampler, RankSampler

    rng = np.random.default_rng(0)
    for name, sampler in (("uniform", UniformSampler(capacity)), ("prioritized", ProportionalSampler(capacity)),
                          ("rank", RankSampler(capacity))):
        all_slots = np.arange(capacity)
        sampler.add(all_slots)
        sampler.update_priorities(all_slots, rng.exponential(size=capacity))
        for _ in range(100):  # warm up (and let the rank sampler do its first sort)
            indices, _ = sampler.sample(32, rng, 0.5)
            sampler.update_priorities(indices, rng.exponential(size=32))
        blocks = []
        for _ in range(20):  # the best of 20 blocks: robust to other load on the machine
            start = time.perf_counter()
            for _ in range(rounds // 20):
                indices, _ = sampler.sample(32, rng, 0.5)
                sampler.update_priorities(indices, rng.exponential(size=32))
            blocks.append((time.perf_counter() - start) / (rounds // 20) * 1e6)
        print(f"{name:12s} capacity {capacity:,}: sample 32 + update 32 = {min(blocks):7.1f} us "
              f"(best of 20 blocks; mean {sum(blocks) / len(blocks):.1f} us, which for rank includes re-sorts)")


def pong(steps: int, learning_starts: int) -> None:
    from dqn_pong_speed import toolkit_rate

    rates = {replay: toolkit_rate(steps, learning_starts, replay=replay) for replay in ("uniform", "prioritized")}
    print(f"Pong DQN training phase ({steps - learning_starts:,} steps): uniform {rates['uniform']:.1f} steps/s, "
          f"prioritized {rates['prioritized']:.1f} steps/s, ratio {rates['prioritized'] / rates['uniform']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["samplers", "pong"])
    parser.add_argument("--capacity", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--learning-starts", type=int, default=1000)
    args = parser.parse_args()
    if args.what == "samplers":
        sampler_round_trip(args.capacity, args.rounds)
    else:
        pong(args.steps, args.learning_starts)


if __name__ == "__main__":
    main()
