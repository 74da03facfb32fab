"""What SVG(0), SVG(1)-ER and SVG(inf) share (Heess, Wayne, Silver, Lillicrap, Tassa & Erez
2015, "Learning Continuous Control Policies by Stochastic Value Gradients").

The policy and the model are written with their noise outside:

    a = pi(s, eta; theta) = mu(s) + sigma(s) * eta,        eta ~ N(0, I)   (then squashed to the action box)
    s' = f(s, a, xi)      = s + g(s, a) + sigma_f * xi,     xi ~ N(0, I)

so the value of a state, V(s) = E_eta[ r(s, a) + gamma E_xi[ V'(f(s, a, xi)) ] ], can be
differentiated by fixing the noise and back-propagating, and gradients are taken along
real trajectories by *inferring* the noise that explains each observed step:
eta = (a - mu(s)) / sigma(s) for the action taken and xi = (s' - s - g(s, a)) / sigma_f for
the transition observed (the paper's Section 4).

The reward is either learned, r(s, a) by regression on replay (``--reward learned``), or the
env's own reward written in torch where it is known and differentiable (``--reward known``;
Pendulum-v1; the env's ``reward_function`` capability). Replay goes through the core storage,
so ``--replay prioritized`` works for SVG(0) and SVG(1); the stored action is the unsquashed
u, with log pi_old(u|s), the behaviour policy's log-density the importance weights need, in
the replay's extra column ``log_prob_old``.

This module: config -> presets -> math (noise inference, log-densities, the SVG(inf)
recursion) -> networks -> ``SVGBase`` (acting, replay, the model fit, checkpoint state). The
three algorithms are ``svg0.py``, ``svg1.py`` and ``svginf.py``, each adding its own learner.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from toolkit.config import Preset, bounded
from toolkit.errors import ToolkitError
from toolkit.interfaces import EnvContext, EnvSpec, Transition
from toolkit.nn import mlp
from toolkit.policies import SquashedGaussianPolicy, gaussian_log_prob, polyak_update, require_bounded_box
from toolkit.replay import ReplayBuffer
from toolkit.rng import seeded_generator
from toolkit.vec_env import spec_of


@dataclass(frozen=True)
class SVGConfig:
    """Hyperparameters of SVG(0), SVG(1)-ER and SVG(inf)."""

    learning_rate: float = bounded(3e-4, above=0)
    """Adam step size of the policy."""
    critic_learning_rate: float = bounded(1e-3, above=0)
    """Adam step size of Q (SVG(0)) or V (SVG(1))."""
    model_learning_rate: float = bounded(1e-3, above=0)
    """Adam step size of the dynamics and reward models (SVG(1), SVG(inf))."""
    buffer_size: int = bounded(1_000_000, at_least=1)
    """Replay capacity in transitions (SVG(inf) uses replay only to fit the model)."""
    learning_starts: int = bounded(1_000, at_least=0)
    """Env steps collected before the first update."""
    batch_size: int = bounded(256, at_least=1)
    """Replayed transitions per gradient step."""
    gradient_steps: int = bounded(1, at_least=1)
    """Gradient steps of every learned part per env step (summed over envs)."""
    gamma: float = bounded(0.99, at_least=0, at_most=1)
    """Discount factor."""
    tau: float = bounded(0.005, above=0, at_most=1)
    """Polyak rate of the target critic."""
    hidden: tuple[int, ...] = bounded((256, 256), at_least=1)
    """Hidden widths of the policy, critic, model and reward MLPs."""
    log_std_bounds: tuple[float, float] = (-5.0, 1.0)
    """Clamp of the policy's state-dependent log sigma(s)."""
    episode_gradient_steps: int = bounded(5, at_least=0)
    """SVG(inf): policy steps taken on each finished episode (the noise is re-inferred before each)."""
    max_grad_norm: float = bounded(1.0, at_least=0)
    """SVG(inf): clip the norm of the policy gradient to this (0: no clipping); back-propagation
    through a whole episode of a chaotic system gives gradients from 10 to 1e5 (Pendulum)."""
    entropy_coef: float = bounded(0.0, at_least=0)
    """Weight of a Gaussian entropy bonus (sum of log sigma) in the policy loss."""
    mean_penalty: float = bounded(0.0, at_least=0)
    """Weight of an L2 penalty on the policy's mean before the tanh (Haarnoja et al.'s SAC code
    uses 1e-3): it keeps the mean out of tanh's flat tails, where the value gradient through the
    squashing vanishes and the policy stops correcting itself."""
    importance_clip: float = bounded(5.0, above=0)
    """c in the truncated importance weight min(pi_theta(a|s) / pi_old(a|s), c) of replayed samples."""
    reward: Literal["learned", "known"] = "learned"
    """learned: a reward model r(s, a) fit on replay; known: the env's differentiable reward (Pendulum-v1)."""
    model_error: float = bounded(0.0, at_least=0)
    """Perturb the learned model's mean by model_error * W [s; a] with a fixed random W, to
    study robustness to model error (0: the model as learned)."""
    replay: str = "uniform"
    """Replay sampler: uniform, or any registered sampler (e.g. prioritized)."""


PRESETS: dict[str, Preset] = {
    "pendulum": Preset({"steps": 20_000, "eval_every": 2_000, "eval_episodes": 10, "learning_rate": 3e-4,
                        "critic_learning_rate": 1e-3, "gamma": 0.98},
                       envs=("Pendulum-v1",), description="Pendulum-v1, the budget of rl-zoo3's SAC config"),
    "inverted_pendulum": Preset({"steps": 20_000, "eval_every": 2_000, "eval_episodes": 10},
                                envs=("InvertedPendulum-v5",), description="InvertedPendulum-v5"),
}


# -- the math --------------------------------------------------------------------------------


def infer_noise(observed: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """The standard-normal noise that makes ``mean + std * noise`` equal ``observed``: eta for
    a taken action, xi for an observed transition. Detached: it is data, not a function of theta."""
    return ((observed - mean) / std).detach()


def truncated_importance_weight(log_prob: torch.Tensor, old_log_prob: torch.Tensor, clip: float) -> torch.Tensor:
    """min(pi_theta(a|s) / pi_old(a|s), c), detached (it weights a gradient, it is not differentiated)."""
    return torch.exp(log_prob - old_log_prob).clamp(max=clip).detach()


def saturated_fraction(pre_tanh_mean: torch.Tensor, threshold: float = 3.0) -> float:
    """Fraction of the policy's mean actions deep in tanh's flat tails (|mu| > 3: tanh > 0.995,
    derivative < 0.01), where the policy gradient through the squashing all but vanishes."""
    return (pre_tanh_mean.abs() > threshold).float().mean().item()


def svg_infinity_gradient(
    states: torch.Tensor,
    step: Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]],
    params: list[torch.Tensor],
    gamma: float,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """V_theta at the first state of a trajectory, by the backward recursion of SVG(inf).

    ``step(s, t)`` returns (r_t, s_{t+1}) as differentiable functions of the state s and of
    ``params``, with the noise of step t fixed. Going backwards from the last step with
    V'_s' = 0 and V'_theta = 0 beyond it, each step computes J_t = r_t + gamma V'_s' . s_{t+1}
    with V'_s' held constant; then dJ_t/ds is V_s (= r_s + r_a pi_s + gamma V'_s' (f_s + f_a pi_s))
    and dJ_t/dtheta + gamma V'_theta is V_theta (= r_a pi_theta + gamma (V'_s' f_a pi_theta + V'_theta)).
    Returns (V_theta per parameter, V_s at the first state).
    """
    value_s = torch.zeros_like(states[0])
    value_theta = [torch.zeros_like(p) for p in params]
    for t in range(len(states) - 1, -1, -1):
        s = states[t].detach().requires_grad_(True)
        reward, next_state = step(s, t)
        objective = reward.sum() + gamma * (value_s * next_state).sum()
        grads = torch.autograd.grad(objective, [s, *params], allow_unused=True)
        value_s = grads[0]
        value_theta = [(g if g is not None else torch.zeros_like(p)) + gamma * v
                       for g, p, v in zip(grads[1:], params, value_theta)]
    return value_theta, value_s


# -- networks --------------------------------------------------------------------------------


GaussianPolicy = SquashedGaussianPolicy
"""u = mu(s) + sigma(s) * eta; the env action is u squashed into the box by tanh (``toolkit.policies``)."""


class DynamicsModel(nn.Module):
    """s' = s + g(s, a) + sigma_f * xi, with a learned state-independent sigma_f, fit by
    maximum likelihood on replay. ``model_error`` adds a fixed random linear map of (s, a)
    to the mean, a controlled model error."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: tuple[int, ...], model_error: float,
                 generator: torch.Generator) -> None:
        super().__init__()
        self.delta = mlp(obs_dim + action_dim, hidden, obs_dim)
        self.log_std = nn.Parameter(torch.full((obs_dim,), -2.0))
        error = torch.randn(obs_dim + action_dim, obs_dim, generator=generator, device=generator.device)
        error = error / math.sqrt(obs_dim + action_dim)
        self.register_buffer("error", model_error * error)

    def mean(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        inputs = torch.cat([obs, action], dim=-1)
        return obs + self.delta(inputs) + inputs @ self.error

    def std(self) -> torch.Tensor:
        return self.log_std.clamp(-10.0, 2.0).exp()

    def negative_log_likelihood(self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """Per-sample -log N(s'; s + g(s, a), sigma_f^2) (the perturbation is not trained away)."""
        inputs = torch.cat([obs, action], dim=-1)
        mean = obs + self.delta(inputs)
        return -gaussian_log_prob(next_obs, mean, self.log_std.clamp(-10.0, 2.0))


# -- what the three algorithms share ---------------------------------------------------------


class DeterministicPolicy:
    """The squashed mean action."""

    def __init__(self, algorithm: SVGBase) -> None:
        self.algorithm = algorithm

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        a = self.algorithm
        with torch.no_grad():
            mean, _ = a.policy_net(a.tensor(obs.reshape(len(obs), -1)))
            return a.policy_net.squash(mean).cpu().numpy().astype(a.action_space.dtype)


class PolicyModule(nn.Module):
    """``DeterministicPolicy`` as one module (``toolkit export``): the squashed mean action."""

    def __init__(self, policy_net: nn.Module) -> None:
        super().__init__()
        self.policy_net = policy_net

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mean, _ = self.policy_net(obs.reshape(obs.shape[0], -1).to(torch.float32))
        return self.policy_net.squash(mean)


class SVGBase:
    """The policy, its replay, acting, the model fit and checkpoint state. A subclass sets
    ``variant``, what it learns (``critic_input``: "state_action" for Q, "state" for V, None;
    ``uses_model``) and ``replay_step``, its update from a replayed batch."""

    Config: ClassVar[type] = SVGConfig
    loop: ClassVar[str] = "env"
    presets: ClassVar[dict[str, Preset]] = PRESETS
    variant: ClassVar[str] = ""
    critic_input: ClassVar[str | None] = None
    uses_model: ClassVar[bool] = False
    replay_sampler_option: ClassVar[bool] = True
    """False where replay only fits the model (SVG(inf)): it is sampled uniformly."""

    @classmethod
    def check(cls, config: SVGConfig, spec: EnvSpec) -> None:
        """SVG differentiates through the action: it needs a continuous (Box) action space, and
        ``--reward known`` needs an env whose reward function is known."""
        require_bounded_box(cls.variant, spec)
        if cls.uses_model and config.reward == "known" and spec.reward_function is None:
            raise ToolkitError(f"{spec.id} has no known differentiable reward (the env's reward_function "
                               "capability); use --reward learned")

    def __init__(self, config: SVGConfig, context: EnvContext) -> None:
        spec = spec_of(context)
        self.check(config, spec)
        self.config = config
        self.device = torch.device(context.device)
        torch.manual_seed(context.seed)
        self.generator = torch.Generator(self.device).manual_seed(context.seed)
        self.action_space = context.action_space
        obs_dim = int(np.prod(context.observation_space.shape))
        action_dim = int(np.prod(context.action_space.shape))
        self.policy_net = GaussianPolicy(obs_dim, context.action_space, config.hidden, config.log_std_bounds)
        self.policy_optimizer = torch.optim.Adam(self.policy_net.parameters(), lr=config.learning_rate)
        self.critic = self.critic_target = None
        if self.critic_input is not None:  # built in this order: the torch RNG gives every run the same nets
            critic_inputs = obs_dim + action_dim if self.critic_input == "state_action" else obs_dim
            self.critic = mlp(critic_inputs, config.hidden, 1)
            self.critic_target = mlp(critic_inputs, config.hidden, 1)
            self.critic_target.load_state_dict(self.critic.state_dict())
            self.critic_target.requires_grad_(False)
            self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.critic_learning_rate)
        self.model = self.reward_model = None
        self.known_reward = None
        if self.uses_model:
            self.model = DynamicsModel(obs_dim, action_dim, config.hidden, config.model_error, self.generator)
            model_params = list(self.model.parameters())
            if config.reward == "known":
                self.known_reward = spec.reward_function
            else:
                self.reward_model = mlp(obs_dim + action_dim, config.hidden, 1)
                model_params += list(self.reward_model.parameters())
            self.model_optimizer = torch.optim.Adam(model_params, lr=config.model_learning_rate)
        for module in self._modules().values():
            if isinstance(module, nn.Module):
                module.to(self.device)
        # the stored action is the unsquashed sample u; the importance weights need log pi_old(u|s) too
        stored_actions = spaces.Box(-np.inf, np.inf, (action_dim,), np.float32)
        stored_obs = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.replay = ReplayBuffer(config.buffer_size, stored_obs, stored_actions, n_envs=context.n_envs,
                                   sampler=config.replay if self.replay_sampler_option else "uniform",
                                   seed=context.seed,
                                   extras={"log_prob_old": spaces.Box(-np.inf, np.inf, (), np.float32)})
        self.total_steps = context.total_steps
        self.n_envs = context.n_envs
        self._last_u = self._last_log_prob = np.zeros(0, np.float32)  # of the last act(), for observe()
        self.last_step = 0
        self.updates = 0

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=torch.float32, device=self.device)

    # -- acting ------------------------------------------------------------------------------

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        flat = self.tensor(obs.reshape(len(obs), -1))
        with torch.no_grad():
            mean, log_std = self.policy_net(flat)
            eta = torch.randn(mean.shape, generator=self.generator, device=self.device)
            u = mean + log_std.exp() * eta
            log_prob = gaussian_log_prob(u, mean, log_std)
            action = self.policy_net.squash(u)
        self._last_u, self._last_log_prob = u.cpu().numpy(), log_prob.cpu().numpy()
        return action.cpu().numpy().astype(self.action_space.dtype)

    def observe(self, t: Transition) -> None:
        obs, next_obs = t.obs.reshape(len(t.obs), -1), t.next_obs.reshape(len(t.next_obs), -1)
        self.replay.add(obs, self._last_u, t.reward, next_obs, t.terminated, t.truncated,
                        extras={"log_prob_old": self._last_log_prob})

    # -- learning ----------------------------------------------------------------------------

    def update(self, step: int) -> dict[str, float]:
        c = self.config
        metrics: dict[str, float] = {}
        if step < c.learning_starts:
            self.last_step = step
            return metrics
        for _ in range((step - self.last_step) * c.gradient_steps):
            batch = self.replay.sample(c.batch_size, gamma=c.gamma, progress=step / self.total_steps)
            data = {k: v.float() for k, v in batch.to_torch(self.device).items()}
            if self.model is not None:
                metrics |= self.fit_model(data)
            metrics |= self.replay_step(data, batch.indices)
            self.updates += 1
        self.last_step = step
        return metrics

    def replay_step(self, data: dict[str, torch.Tensor], indices: np.ndarray) -> dict[str, float]:
        """The variant's update from one replayed batch (SVG(inf) learns from episodes instead)."""
        return {}

    def _reparameterised_action(self, obs: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """a(theta) = squash(mu(s) + sigma(s) * eta) at the eta that reproduces the stored u;
        returns it with log pi_theta(u|s), the policy's regulariser per sample and mu(s) (pre-tanh)."""
        mean, log_std = self.policy_net(obs)
        eta = infer_noise(u, mean, log_std.exp())
        action = self.policy_net.squash(mean + log_std.exp() * eta)
        return action, gaussian_log_prob(u, mean, log_std), self._policy_regulariser(mean, log_std), mean

    def _policy_regulariser(self, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
        """Added to the objective: the entropy bonus minus the penalty on the pre-tanh mean."""
        c = self.config
        return c.entropy_coef * log_std.sum(-1) - c.mean_penalty * mean.square().sum(-1)

    def _policy_step(self, objective: torch.Tensor, regulariser: torch.Tensor) -> float:
        loss = -(objective + regulariser).mean()
        self.policy_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.policy_optimizer.step()
        return loss.item()

    def _update_target(self) -> None:
        polyak_update(self.critic_target, self.critic, self.config.tau)

    def fit_model(self, data: dict[str, torch.Tensor]) -> dict[str, float]:
        """One maximum-likelihood step of the dynamics model (and the reward model)."""
        action = self.policy_net.squash(data["action"])
        loss = self.model.negative_log_likelihood(data["obs"], action, data["next_obs"]).mean()
        metrics = {"loss/model": loss.item()}
        if self.reward_model is not None:
            predicted = self.reward_model(torch.cat([data["obs"], action], dim=-1)).squeeze(-1)
            reward_loss = (predicted - data["reward"]).square().mean()
            loss = loss + reward_loss
            metrics["loss/reward_model"] = reward_loss.item()
        self.model_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.model_optimizer.step()
        return metrics

    def reward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        if self.known_reward is not None:
            return self.known_reward(obs, action)
        return self.reward_model(torch.cat([obs, action], dim=-1)).squeeze(-1)


    # -- the rest of the protocol ------------------------------------------------------------

    def policy(self) -> DeterministicPolicy:
        return DeterministicPolicy(self)

    def policy_module(self) -> PolicyModule:
        return PolicyModule(self.policy_net)

    def stochastic_policy(self, seed: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
        """Actions sampled from the squashed Gaussian, as in training (a random generator of its
        own, seeded with ``seed``)."""
        generator = seeded_generator(self.device, seed)

        def sample(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                mean, log_std = self.policy_net(self.tensor(obs.reshape(len(obs), -1)))
                u = mean + log_std.exp() * torch.randn(mean.shape, generator=generator, device=self.device)
                return self.policy_net.squash(u).cpu().numpy().astype(self.action_space.dtype)

        return sample

    def replay_buffers(self) -> dict[str, ReplayBuffer]:
        return {"replay": self.replay}

    def _modules(self) -> dict[str, Any]:
        modules = {"policy": self.policy_net, "policy_optimizer": self.policy_optimizer}
        if self.critic is not None:
            modules |= {"critic": self.critic, "critic_target": self.critic_target,
                        "critic_optimizer": self.critic_optimizer}
        if self.model is not None:
            modules |= {"model": self.model, "model_optimizer": self.model_optimizer}
        if self.reward_model is not None:
            modules["reward_model"] = self.reward_model
        return modules

    def state_dict(self) -> dict[str, Any]:
        state = {name: module.state_dict() for name, module in self._modules().items()}
        return state | {"generator": self.generator.get_state(), "last_step": self.last_step, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, module in self._modules().items():
            module.load_state_dict(state[name])
        self.generator.set_state(state["generator"])
        self.last_step, self.updates = int(state["last_step"]), int(state["updates"])
