"""DQN training speed on Pong: toolkit against SB3 with identical hyperparameters, one run.

    python benchmarks/dqn_pong_speed.py [--steps 6000] [--learning-starts 1000] [--threads 2] [--compile]

Both train PongNoFrameskip-v4 with the same DQN preprocessing and the hyperparameters of
``shared/reference/anchor-scripts/sb3_dqn_pong.py`` (rl-zoo3's Atari DQN: batch 32, one
gradient step every 4 env steps, Adam 1e-4, buffer 100k, target every 1000 steps, epsilon
1 -> 0.01 over 10% of the run), on the CPU with the same number of torch threads. The rate
is measured over the training phase only (after learning_starts), where each run spends its
time; the script prints both rates and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from common import training_rate


def sb3_rate(steps: int, learning_starts: int, device: str) -> float:
    import ale_py
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)

    class Clock(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps == learning_starts:
                self.start = time.perf_counter()
            return True

    env = VecFrameStack(make_atari_env("PongNoFrameskip-v4", n_envs=1, seed=0), n_stack=4)
    model = DQN("CnnPolicy", env, buffer_size=100_000, learning_rate=1e-4, batch_size=32,
                learning_starts=learning_starts, target_update_interval=1000, train_freq=4, gradient_steps=1,
                exploration_fraction=0.1, exploration_final_eps=0.01, optimize_memory_usage=False, verbose=0,
                seed=0, device=device)
    clock = Clock()
    model.learn(total_timesteps=steps, callback=clock)
    return (steps - learning_starts) / (time.perf_counter() - clock.start)


def toolkit_rate(steps: int, learning_starts: int, device: str = "cpu", compile_: bool = False,
                 amp: bool = False, replay: str = "uniform") -> float:
    """toolkit's DQN with the anchor's hyperparameters; env steps/s after learning_starts."""
    import toolkit

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = toolkit.train(
            "dqn", env="Pong", steps=steps, seed=0, device=device, run_dir=str(Path(tmp) / "run"), progress=False,
            buffer_size=100_000, learning_rate=1e-4, batch_size=32, learning_starts=learning_starts,
            target_update_interval=1000, train_frequency=4, gradient_steps=1, exploration_fraction=0.1,
            exploration_final=0.01, exploration_steps=0, optimizer="adam", optimizer_eps=1e-8, loss="huber",
            max_grad_norm=10.0, gamma=0.99, compile=compile_, amp=amp, replay=replay, eval_every=0,
            eval_episodes=1, checkpoint_every=0, log_every=500)
        return training_rate(run_dir, learning_starts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="also measure toolkit with --compile")
    parser.add_argument("--amp", action="store_true", help="also measure toolkit with --amp (bfloat16)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ours = toolkit_rate(args.steps, args.learning_starts, args.device, False)
    theirs = sb3_rate(args.steps, args.learning_starts, args.device)
    print(f"Pong DQN training phase, {args.steps - args.learning_starts:,} steps, {args.device}, "
          f"{args.threads} threads")
    print(f"SB3 DQN          : {theirs:7.1f} env steps/s")
    print(f"toolkit dqn      : {ours:7.1f} env steps/s   ratio {ours / theirs:.2f}x")
    if args.compile:
        compiled = toolkit_rate(args.steps, args.learning_starts, args.device, compile_=True)
        print(f"toolkit --compile: {compiled:7.1f} env steps/s   ratio {compiled / theirs:.2f}x")
    if args.amp:
        bf16 = toolkit_rate(args.steps, args.learning_starts, args.device, amp=True)
        print(f"toolkit --amp    : {bf16:7.1f} env steps/s   ratio {bf16 / theirs:.2f}x")


if __name__ == "__main__":
    main()
