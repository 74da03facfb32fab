"""PPO, SAC and TD3: toolkit against Stable-Baselines3 with identical hyperparameters.

    python benchmarks/ppo_sac_td3_vs_sb3.py [--runs ppo:CartPole-v1 sac:Pendulum-v1 ...] [--seeds 3] [--jobs 2]
        [--steps N] [--results benchmarks/results/ppo_sac_td3.jsonl] [--plot-dir plugins]
        [--work-dir runs/ppo_sac_td3] [--checkpoint-every 25000] [--report] [--plot-name NAME]
    python benchmarks/ppo_sac_td3_vs_sb3.py --speed-steps 20000 --runs ppo:PongNoFrameskip-v4

Each (library, algorithm:env, seed) runs in its own process with one torch thread. The
hyperparameters are toolkit's preset for that env (rl-zoo3's tuned values), handed to SB3
translated into its arguments, so both sides run the same settings; the budgets are the
issue's (PPO: CartPole 100k, LunarLander and Hopper 1M; SAC and TD3: Pendulum 20k,
HalfCheetah and Hopper 300k), ``--steps`` replaces them all. Both are scored the same way:
the deterministic policy's mean return over 20 evaluation episodes at the end (SB3 through
``evaluate_policy``, with its VecNormalize statistics frozen where observations are
normalised). Prints final returns (mean ± std over seeds), env steps/s of training (toolkit's
from its metric lines, evaluation excluded; SB3's from ``learn``), the toolkit / SB3 ratio and
Welch's t-test p of toolkit's scores against SB3's (final evaluation and late training return);
``--plot-dir`` draws the training-episode returns of both, one PNG per algorithm.
``--results`` keeps every finished job, so an interrupted benchmark resumes; a job itself
resumes too: each run keeps its work in ``--work-dir`` (toolkit: its run directory with the
replay in its checkpoints; SB3: its model, replay buffer and normaliser) every
``--checkpoint-every`` steps (25k), and running the same command again continues each
unfinished run from its last checkpoint (toolkit's resume is exact; SB3's is not: it does not
save its envs' and generators' state, and restarts the episode in progress). Env steps/s
count the seconds of the training that was kept.

``--report``: run nothing; the table and curves of the jobs already in ``--results``, over the
seeds each library has finished so far (runs that take several sessions fill in gradually),
and where each unfinished job stands (its last checkpoint in ``--work-dir``).

``--speed-steps N``: only env steps/s over N steps, one run at a time (so the two libraries
never share the cores); for Atari (PongNoFrameskip-v4) both use the Atari preset: 8 envs,
128 steps, the Nature CNN, 4 epochs of 256-sample minibatches, and the same Atari wrappers;
SAC and TD3 on an env that gives images (``--runs sac:CarRacing-v3``) both use the Nature CNN
(SB3's CnnPolicy) and a 100k-transition replay.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from common import (plot_curves, read_results, result_key, run_workers, sb3_learn_resumably, versus,
                    toolkit_learn_resumably)

BUDGET = {"ppo:CartPole-v1": 100_000, "ppo:LunarLander-v3": 1_000_000, "ppo:Hopper-v5": 1_000_000,
          "ppo:Pendulum-v1": 100_000,
          "sac:Pendulum-v1": 20_000, "sac:HalfCheetah-v5": 300_000, "sac:Hopper-v5": 300_000,
          "td3:Pendulum-v1": 20_000, "td3:HalfCheetah-v5": 300_000, "td3:Hopper-v5": 300_000,
          "td3:MountainCarContinuous-v0": 300_000, "sac:MountainCarContinuous-v0": 50_000,
          "ppo:PongNoFrameskip-v4": 10_000_000}
RUN_LEVEL = ("steps", "eval_every", "eval_episodes", "checkpoint_every")
# SAC and TD3 on images (CarRacing-v3): both libraries' Nature CNN (SB3's CnnPolicy), and a
# replay that fits this machine's memory (the default 1M CarRacing frames take 27.6 GB in
# toolkit's replay and twice that in SB3's, which stores each observation twice)
IMAGE_OVERRIDES = {"network": "nature", "buffer_size": 100_000}


def image_overrides(algo: str, env_id: str) -> dict:
    """IMAGE_OVERRIDES for SAC and TD3 on an env that gives images, else nothing."""
    from toolkit.nn import image_layout
    from toolkit.vec_env import describe_env, resolve_env

    if algo not in ("sac", "td3") or image_layout(describe_env(resolve_env(env_id)).observation_space) is None:
        return {}
    return IMAGE_OVERRIDES


def toolkit_settings(algo: str, env_id: str) -> tuple[object, int]:
    """The algorithm's config with the preset toolkit applies to ``env_id`` (rl-zoo3's values),
    and its n_envs."""
    from toolkit.planning import preset_subjects, select_preset
    from toolkit.plugins import get_registry
    from toolkit.vec_env import resolve_env

    cls = get_registry().load("algorithm", algo)
    resolved = resolve_env(env_id)
    _, preset = select_preset(cls, None, resolved, env_id)
    values = preset.values_for(preset_subjects(resolved, env_id)) if preset else {}
    n_envs = int(values.get("n_envs", 1))
    fields = {k: v for k, v in values.items() if k not in RUN_LEVEL and k != "n_envs"}
    return cls.Config(**fields, **image_overrides(algo, env_id)), n_envs


def sb3_model(algo: str, config, env, seed: int):
    """The SB3 model with ``config`` translated into SB3's arguments."""
    import numpy as np
    from stable_baselines3 import PPO, SAC, TD3
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
    from torch import nn

    def annealed(value: float, schedule: str):
        return (lambda remaining: remaining * value) if schedule == "linear" else value

    if algo == "ppo":
        c = config
        policy_kwargs = {"ortho_init": c.ortho_init, "log_std_init": c.log_std_init,
                         "activation_fn": nn.ReLU if c.activation == "relu" else nn.Tanh}
        image = len(env.observation_space.shape) == 3
        if not image:
            policy_kwargs["net_arch"] = {"pi": list(c.hidden), "vf": list(c.hidden)}
        return PPO("CnnPolicy" if image else "MlpPolicy", env, seed=seed, device="cpu", verbose=0,
                   learning_rate=annealed(c.learning_rate, c.learning_rate_schedule), n_steps=c.n_steps,
                   batch_size=c.batch_size, n_epochs=c.n_epochs, gamma=c.gamma, gae_lambda=c.gae_lambda,
                   clip_range=annealed(c.clip_range, c.clip_range_schedule), normalize_advantage=c.normalize_advantage,
                   ent_coef=c.ent_coef, vf_coef=c.vf_coef, max_grad_norm=c.max_grad_norm or 1e9,
                   target_kl=c.target_kl or None, use_sde=c.use_sde, sde_sample_freq=c.sde_sample_freq,
                   policy_kwargs=policy_kwargs)
    schedule = getattr(config, "learning_rate_schedule", "constant")  # SAC has one, TD3 not
    common = dict(seed=seed, device="cpu", verbose=0, learning_rate=annealed(config.learning_rate, schedule),
                  buffer_size=config.buffer_size, learning_starts=config.learning_starts,
                  batch_size=config.batch_size, tau=config.tau, gamma=config.gamma,
                  train_freq=config.train_frequency, gradient_steps=config.gradient_steps,
                  policy_kwargs={"net_arch": list(config.hidden)})
    policy = "CnnPolicy" if config.network == "nature" else "MlpPolicy"
    if algo == "sac":
        ent_coef = f"auto_{config.ent_coef}" if config.autotune else config.ent_coef
        if config.use_sde:
            common["policy_kwargs"]["log_std_init"] = config.log_std_init
        return SAC(policy, env, ent_coef=ent_coef, target_update_interval=config.target_update_interval,
                   target_entropy=-config.target_entropy_scale * float(np.prod(env.action_space.shape)),
                   use_sde=config.use_sde, sde_sample_freq=config.sde_sample_freq, **common)
    n_actions = int(np.prod(env.action_space.shape))
    noise_class = (OrnsteinUhlenbeckActionNoise if config.exploration_noise_type == "ornstein-uhlenbeck"
                   else NormalActionNoise)
    noise = noise_class(np.zeros(n_actions), config.exploration_noise * np.ones(n_actions))
    return TD3(policy, env, action_noise=noise, policy_delay=config.policy_delay,
               target_policy_noise=config.target_policy_noise, target_noise_clip=config.target_noise_clip, **common)


def sb3_env(algo: str, env_id: str, config, n_envs: int, seed: int, monitor_dir: Path):
    """SB3's training env for a run: its Atari or plain vector env with Monitor files, and
    VecNormalize where the preset normalises (PPO on MuJoCo)."""
    from stable_baselines3.common.env_util import make_atari_env, make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize

    if "NoFrameskip" in env_id:
        import ale_py  # noqa: F401  (registers the ALE envs)

        return VecFrameStack(make_atari_env(env_id, n_envs=n_envs, seed=seed, monitor_dir=str(monitor_dir)), 4)
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed, monitor_dir=str(monitor_dir))
    if algo == "ppo" and (config.normalize_obs or config.normalize_reward):
        env = VecNormalize(env, norm_obs=config.normalize_obs, norm_reward=config.normalize_reward, gamma=config.gamma)
    return env


def run_sb3(run: str, seed: int, steps: int, work_dir: Path | None, checkpoint_every: int, evaluate: bool) -> dict:
    import stable_baselines3
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize

    algo, env_id = run.split(":")
    config, n_envs = toolkit_settings(algo, env_id)
    model, env, seconds, curve = sb3_learn_resumably(
        getattr(stable_baselines3, algo.upper()), lambda env_seed, monitor: sb3_env(algo, env_id, config, n_envs, env_seed, monitor),
        lambda env: sb3_model(algo, config, env, seed), seed, steps, work_dir, checkpoint_every)
    result = {"sps": steps / seconds, "curve": curve}
    if not evaluate:  # speed only
        return result | {"final": float("nan"), "std": float("nan")}
    eval_env = make_vec_env(env_id, n_envs=1, seed=seed + 100)
    if isinstance(env, VecNormalize):
        eval_env = VecNormalize(eval_env, training=False, norm_obs=config.normalize_obs, norm_reward=False)
        eval_env.obs_rms = env.obs_rms
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=20, deterministic=True)
    return result | {"final": float(mean), "std": float(std)}


def run_toolkit(run: str, seed: int, steps: int, work_dir: Path | None, checkpoint_every: int, evaluate: bool) -> dict:
    algo, env_id = run.split(":")
    records, sps = toolkit_learn_resumably(algo, work_dir, checkpoint_every, env=env_id, seed=seed, steps=steps,
                                           eval_every=0, eval_episodes=20 if evaluate else 1, progress=False, threads=1,
                                           **image_overrides(algo, env_id))
    curve = [(r["step"], r["train/episode_return"]) for r in records if "train/episode_return" in r]
    if not evaluate:
        return {"final": float("nan"), "std": float("nan"), "sps": sps, "curve": curve}
    final = [r for r in records if "eval/mean_return" in r][-1]
    return {"final": final["eval/mean_return"], "std": final["eval/std_return"], "sps": sps, "curve": curve}


def speed_only(runs: list[str], libs: list[str], steps: int) -> None:
    jobs = [(lib, run, 0) for run in runs for lib in libs]
    results = run_workers(__file__, jobs, 1, extra_args=["--steps", str(steps), "--work-dir", "", "--no-eval"])
    for run in runs:
        rates = {lib: results[(lib, run, 0)]["sps"] for lib in libs}
        print(f"{run}, {steps:,} steps each, one at a time: "
              + ", ".join(f"{lib} {rate:.3g} steps/s" for lib, rate in rates.items())
              + (f", ratio {rates['toolkit'] / rates['sb3']:.2f}" if len(rates) == 2 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=[r for r in BUDGET if "Pong" not in r],
                        help="algorithm:env pairs (default: all but Pong)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=0, help="replace every budget")
    parser.add_argument("--libs", nargs="+", default=["toolkit", "sb3"])
    parser.add_argument("--results", type=Path, help="append finished jobs here and skip those already in it")
    parser.add_argument("--plot-dir", type=Path,
                        help="write the curves here, one PNG per algorithm (plugins: into each plugin's folder)")
    parser.add_argument("--plot-name", default="{algo}/{algo}_curves.png",
                        help="each PNG's path under --plot-dir, {algo} replaced")
    parser.add_argument("--speed-steps", type=int, default=0, help="only time this many steps per library")
    parser.add_argument("--work-dir", type=lambda text: Path(text) if text else None, default=Path("runs/ppo_sac_td3"),
                        help="where unfinished runs keep their checkpoints (run the command again to continue them)")
    parser.add_argument("--checkpoint-every", type=int, default=25_000, help="env steps between those checkpoints")
    parser.add_argument("--report", action="store_true",
                        help="run nothing: the table and curves of the jobs already in --results (seeds so far)")
    parser.add_argument("--worker", nargs=3, metavar=("LIB", "RUN", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--no-eval", action="store_true", help=argparse.SUPPRESS)  # a worker timing speed only
    args = parser.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(1)
        lib, run, seed = args.worker
        steps = args.steps or BUDGET[run]
        work_dir = work_dir_of(args.work_dir, lib, run, int(seed), steps) if args.work_dir else None
        run_one = run_toolkit if lib == "toolkit" else run_sb3
        evaluate = not args.no_eval and "NoFrameskip" not in run  # Atari: speed only
        print(json.dumps(run_one(run, int(seed), steps, work_dir, args.checkpoint_every, evaluate)))
        return
    if args.speed_steps:
        speed_only(args.runs, args.libs, args.speed_steps)
        return
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(lib, run, seed) for run in args.runs for seed in seeds for lib in args.libs]
    extra = ["--steps", str(args.steps)] if args.steps else []
    if args.report:
        results = finished_jobs(args.results, jobs, extra)
        unfinished(args.work_dir, [job for job in jobs if job not in results], args.steps)
    else:
        results = run_workers(__file__, jobs, args.jobs, extra_args=extra, results_file=args.results,
                              placement_args=["--work-dir", str(args.work_dir or ""), "--checkpoint-every",
                                              str(args.checkpoint_every)])
    report(results, args.runs, args.libs, args.steps, args.plot_dir, args.plot_name)


def finished_jobs(results_file: Path | None, jobs: list[tuple], extra: list[str]) -> dict[tuple, dict]:
    """The jobs already in ``results_file``, run or not."""
    if results_file is None or not results_file.exists():
        raise SystemExit("--report needs --results FILE with finished jobs")
    done = read_results(results_file)
    keys = {job: result_key(job, extra) for job in jobs}
    return {job: done[key] for job, key in keys.items() if key in done}


def work_dir_of(work_dir: Path, lib: str, run: str, seed: int, steps: int) -> Path:
    return work_dir / f"{lib}-{run.replace(':', '-').replace('/', '_')}-seed{seed}-{steps}"


def unfinished(work_dir: Path | None, jobs: list[tuple], steps: int) -> None:
    """Where each job not yet in the results stands: the step of its last checkpoint in
    ``work_dir`` (the same command continues it from there), or not started."""
    from toolkit import checkpoint

    if not jobs or work_dir is None:
        return
    print("not finished (the same command without --report continues them):")
    for lib, run, seed in jobs:
        budget = steps or BUDGET[run]
        place = work_dir_of(work_dir, lib, run, seed, budget)
        if lib == "toolkit":
            latest = checkpoint.latest(place) if place.is_dir() else None
            at = checkpoint.step_of(latest) if latest else 0
        else:
            state = place / "state.json"
            at = json.loads(state.read_text())["steps"] if state.exists() else 0
        where = f"checkpoint at {at:,} of {budget:,} steps" if at else "not started (or stopped before its first checkpoint)"
        print(f"  {lib:<8} {run} seed {seed}: {where}")


def late_training_return(curve: list, steps: int, fraction: float = 0.1) -> float:
    """The mean return of the training episodes that ended in the last ``fraction`` of the run:
    a second score beside the final evaluation, which measures the policy at one moment (a
    policy that is good for most of the run's end can evaluate badly at its last step)."""
    late = [episode_return for step, episode_return in curve if step >= (1 - fraction) * steps]
    return statistics.mean(late) if late else float("nan")


def report(results: dict[tuple, dict], runs: list[str], libs: list[str], steps: int, plot_dir: Path | None,
           plot_name: str = "{algo}/{algo}_curves.png") -> None:
    """The table (mean ± std over the seeds each library has finished) and, with ``plot_dir``,
    the training curves, one PNG per algorithm."""
    print("\n| algorithm | env | steps | library | final eval return (mean ± std over seeds) | training return, "
          "last 10% of steps | seeds | env steps/s |")
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        algo, env_id = run.split(":")
        rates, finals_of, lates_of = {}, {}, {}
        for lib in libs:
            done = sorted(job[2] for job in results if job[:2] == (lib, run))
            if not done:
                continue
            finals = finals_of[lib] = [results[(lib, run, s)]["final"] for s in done]
            rates[lib] = statistics.mean(results[(lib, run, s)]["sps"] for s in done)
            late = lates_of[lib] = [late_training_return(results[(lib, run, s)]["curve"], steps or BUDGET[run])
                                    for s in done]
            print(f"| {algo} | {env_id} | {steps or BUDGET[run]:,} | {lib} | {statistics.mean(finals):.1f} ± "
                  f"{statistics.pstdev(finals):.1f} ({', '.join(f'{f:.0f}' for f in finals)}) | "
                  f"{statistics.mean(late):.1f} ({', '.join(f'{x:.0f}' for x in late)}) | "
                  f"{', '.join(map(str, done))} | {rates[lib]:.0f} |")
        if len(rates) == 2:
            # the criterion: toolkit's mean not below SB3's by more than the seeds' spread
            gap = statistics.mean(finals_of["toolkit"]) - statistics.mean(finals_of["sb3"])
            spread = max(statistics.pstdev(finals) for finals in finals_of.values())
            verdict = "not below" if gap >= 0 else "within the spread" if -gap <= spread else "below by more than the spread"
            print(f"| {algo} | {env_id} | | toolkit - SB3 | {versus(finals_of['toolkit'], finals_of['sb3'])}, "
                  f"spread {spread:.1f}: {verdict} | {versus(lates_of['toolkit'], lates_of['sb3'])} | | "
                  f"speed ratio {rates['toolkit'] / rates['sb3']:.2f} |")
    if plot_dir:
        for algo in sorted({run.split(":")[0] for run in runs}):
            panels = {}
            for run in runs:
                if not run.startswith(algo + ":"):
                    continue
                groups = {lib: [results[job]["curve"] for job in sorted(results) if job[:2] == (lib, run)]
                          for lib in libs}
                groups = {lib: curves for lib, curves in groups.items() if curves}
                if groups:
                    counts = ", ".join(f"{lib} {len(curves)}" for lib, curves in groups.items())
                    panels[f"{algo.upper()} on {run.split(':')[1]} (seeds: {counts})"] = groups
            if panels:
                out = plot_dir / plot_name.format(algo=algo)
                out.parent.mkdir(parents=True, exist_ok=True)
                plot_curves(panels, out, "training episode return", smoothing=20)


if __name__ == "__main__":
    main()
