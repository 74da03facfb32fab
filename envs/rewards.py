"""Differentiable rewards of gymnasium envs whose reward is a known function of (obs, action),
exposed as the env's ``reward_function`` capability (SVG(1) and SVG(inf) can use them instead
of a learned reward). The family resolves these ids exactly as gymnasium registers them."""

from __future__ import annotations

from toolkit.interfaces import ResolvedEnv


def pendulum_reward(obs, action):
    """Pendulum-v1's reward -(theta^2 + 0.1 theta_dot^2 + 0.001 u^2), theta from (cos, sin)."""
    import torch

    theta = torch.atan2(obs[..., 1], obs[..., 0])
    return -(theta.square() + 0.1 * obs[..., 2].square() + 0.001 * action[..., 0].square())


KNOWN_REWARDS = {"Pendulum-v1": "toolkit.envs.rewards:pendulum_reward"}


def resolve(name: str) -> ResolvedEnv | None:
    if name not in KNOWN_REWARDS:
        return None
    from toolkit.vec_env import registered_env

    return registered_env(name, capabilities={"reward_function": KNOWN_REWARDS[name]})
