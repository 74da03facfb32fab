"""Trust Region Policy Optimization (Schulman et al. 2015) with generalized advantage
estimation (Schulman et al. 2016).

    maximise   L(theta) = E[ pi_theta(a|s) / pi_old(a|s) * A(s, a) ]
    subject to E_s[ KL(pi_old(.|s) || pi_theta(.|s)) ] <= delta

solved approximately: g = grad L; x = F^-1 g by conjugate gradient, where F x is the
Hessian-vector product of the mean KL (double backprop) plus damping; the largest step
sqrt(2 delta / x^T F x) x; a backtracking line search that accepts a step only if the
surrogate improves and the KL bound holds, and otherwise keeps the old parameters. The
critic V(s) is fitted to the GAE(lambda) returns with several epochs of minibatch Adam.

Reads top to bottom: config -> presets -> math (conjugate_gradient, fisher_vector_product)
-> policies and critic -> the algorithm. Rollouts come from the core env loop and
``RolloutStorage``; bootstrapping on truncation uses the value of the true final
observation.
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

from toolkit import policies
from toolkit.config import Preset, bounded
from toolkit.errors import ToolkitError
from toolkit.interfaces import EnvContext, EnvSpec, Transition
from toolkit.nn import NatureCNN, check_network_option, uses_nature_cnn
from toolkit.nn import mlp as core_mlp
from toolkit.policies import FrozenNormalizer, ObservationLayout, RunningNormalizer, with_encoder
from toolkit.rng import seeded_generator
from toolkit.rollout import RolloutStorage


@dataclass(frozen=True)
class TRPOConfig:
    """Hyperparameters of TRPO; defaults are sb3-contrib's."""

    n_steps: int = bounded(2048, at_least=1)
    """Env steps per env in each rollout (a rollout has n_steps * n_envs transitions)."""
    gamma: float = bounded(0.99, at_least=0, at_most=1)
    """Discount factor."""
    gae_lambda: float = bounded(0.95, at_least=0, at_most=1)
    """GAE lambda: 0 is one-step TD advantages, 1 is Monte-Carlo returns."""
    max_kl: float = bounded(0.01, above=0)
    """delta: the bound on the mean KL(pi_old || pi_new) of one update."""
    cg_iterations: int = bounded(15, at_least=1)
    """Conjugate-gradient iterations for the step direction."""
    cg_damping: float = bounded(0.1, at_least=0)
    """Damping added to the Fisher matrix (F + damping * I)."""
    line_search_steps: int = bounded(10, at_least=1)
    """Backtracking steps before giving up on an update."""
    line_search_shrink: float = bounded(0.8, above=0, below=1)
    """Factor applied to the step at each backtracking step."""
    critic_learning_rate: float = bounded(1e-3, above=0)
    """Adam step size of the value function."""
    critic_epochs: int = bounded(10, at_least=0)
    """Passes over the rollout to fit the value function."""
    critic_batch_size: int = bounded(128, at_least=1)
    """Minibatch size of the value-function fit."""
    hidden: tuple[int, ...] = bounded((64, 64), at_least=1)
    """Hidden widths of the policy and value MLPs (tanh)."""
    network: Literal["auto", "nature", "mlp"] = "auto"
    """What reads the observations before those MLPs. nature: a Nature CNN for the policy and
    another for the value function, for uint8 images of at least 36x36, channels first or last
    (the trust region then covers the policy's CNN too); auto: that CNN for Atari's (C, 84, 84)
    frames, the flattened observations otherwise; mlp: the flattened observations."""
    log_std_init: float = 0.0
    """Initial log standard deviation of Gaussian policies (state-independent, learned)."""
    normalize_advantage: bool = True
    """Standardise advantages within each rollout."""
    normalize_obs: bool = False
    """Running mean / std normalisation of observations (kept in checkpoints)."""
    use_sde: bool = False
    """Continuous actions: generalized state-dependent exploration (gSDE, ``toolkit.policies``)
    instead of independent Gaussian noise each step."""
    sde_sample_freq: int = bounded(-1, at_least=-1)
    """With use_sde: draw new exploration noise every this many steps (-1: once per rollout)."""


PRESETS: dict[str, Preset] = {
    "cartpole": Preset({"n_envs": 2, "n_steps": 512, "cg_damping": 1e-3, "gae_lambda": 0.98, "gamma": 0.99,
                        "critic_learning_rate": 1e-3, "critic_epochs": 20, "critic_batch_size": 512,
                        "steps": 100_000, "eval_every": 20_000, "eval_episodes": 20},
                       envs=("CartPole-v1",), description="rl-zoo3's CartPole-v1 settings"),
    "pendulum": Preset({"n_envs": 2, "n_steps": 1024, "gamma": 0.9, "critic_epochs": 15, "use_sde": True,
                        "sde_sample_freq": 4, "steps": 100_000, "eval_every": 20_000, "eval_episodes": 20},
                       envs=("Pendulum-v1",),
                       description="rl-zoo3's Pendulum-v1 settings (gSDE, new noise every 4 steps)"),
    # rl-zoo3 hyperparams/trpo.yml, "Mujoco Envs" (its v4 settings, here on v5; sb3-contrib's
    # target_kl is max_kl here)
    "mujoco": Preset({"n_envs": 2, "n_steps": 1024, "gamma": 0.99, "gae_lambda": 0.95, "cg_iterations": 25,
                      "cg_damping": 0.1, "critic_epochs": 20, "critic_batch_size": 128, "critic_learning_rate": 1e-3,
                      "normalize_obs": True, "steps": 1_000_000, "eval_every": 50_000, "eval_episodes": 10},
                     envs=("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", "Swimmer-v5"),
                     description="rl-zoo3's MuJoCo settings",
                     overrides={"HalfCheetah-v5": {"max_kl": 0.04}, "Humanoid-v5": {"steps": 2_000_000},
                                "Swimmer-v5": {"gamma": 0.9999}}),
}


# -- the math --------------------------------------------------------------------------------


def conjugate_gradient(matrix_vector: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor,
                       iterations: int, residual_tol: float = 1e-10) -> torch.Tensor:
    """Approximately solve A x = b for symmetric positive-definite A, given only x -> A x."""
    x = torch.zeros_like(b)
    residual = b.clone()
    direction = b.clone()
    residual_sq = residual @ residual
    for _ in range(iterations):
        if residual_sq < residual_tol:  # includes b = 0: nothing to solve
            break
        a_direction = matrix_vector(direction)
        alpha = residual_sq / (direction @ a_direction)
        x += alpha * direction
        residual -= alpha * a_direction
        new_residual_sq = residual @ residual
        direction = residual + (new_residual_sq / residual_sq) * direction
        residual_sq = new_residual_sq
    return x


def flat_grad(output: torch.Tensor, params: list[torch.Tensor], **kwargs: Any) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(output, params, **kwargs)])


def fisher_vector_product(mean_kl: Callable[[], torch.Tensor], params: list[torch.Tensor], vector: torch.Tensor,
                          damping: float) -> torch.Tensor:
    """(F + damping I) v, with F the Hessian of the mean KL at the current parameters,
    computed by double backpropagation: d/dtheta [ (d KL / d theta) . v ]."""
    grad_kl = flat_grad(mean_kl(), params, create_graph=True)
    return flat_grad(grad_kl @ vector, params) + damping * vector


def get_flat(params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.data.reshape(-1) for p in params])


def set_flat(params: list[torch.Tensor], flat: torch.Tensor) -> None:
    offset = 0
    for p in params:
        p.data.copy_(flat[offset : offset + p.numel()].view_as(p))
        offset += p.numel()


# -- policies and critic ---------------------------------------------------------------------


def mlp(in_features: int, hidden: tuple[int, ...], out_features: int) -> nn.Sequential:
    """The tanh MLPs of the TRPO paper's continuous-control experiments."""
    return core_mlp(in_features, hidden, out_features, activation=nn.Tanh)


def network(obs_dim: int, hidden: tuple[int, ...], out_features: int, encoder: nn.Module | None) -> nn.Module:
    """The tanh MLP, on the observations or on the features of ``encoder`` (a CNN)."""
    return with_encoder(encoder, lambda features: mlp(features, hidden, out_features), obs_dim)


class CategoricalPolicy(policies.CategoricalPolicy):
    """pi(a|s) = softmax(logits(s)) over a tanh MLP (``toolkit.policies``)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...], encoder: nn.Module | None = None) -> None:
        super().__init__(network(obs_dim, hidden, n_actions, encoder))


class GaussianPolicy(policies.GaussianPolicy):
    """pi(a|s) = N(mu(s), diag(exp(log_std))^2), mu a tanh MLP, log_std learned and
    state-independent (``toolkit.policies``)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: tuple[int, ...], log_std_init: float,
                 encoder: nn.Module | None = None) -> None:
        super().__init__(network(obs_dim, hidden, action_dim, encoder), action_dim, log_std_init)


# -- the algorithm ---------------------------------------------------------------------------


class DeterministicPolicy:
    """The policy's mode (argmax or Gaussian mean clipped to the action bounds)."""

    def __init__(self, algorithm: TRPO) -> None:
        self.algorithm = algorithm

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        a = self.algorithm
        with torch.no_grad():
            action = a.actor.mode(a.tensor(a.normalize(obs, update=False))).cpu().numpy()
        return a.to_env_action(action)


class PolicyModule(nn.Module):
    """``DeterministicPolicy`` as one module (``toolkit export``): the frozen observation
    normaliser (in float64, as numpy computes it), the mode, the action bounds."""

    def __init__(self, algorithm: TRPO) -> None:
        super().__init__()
        self.actor, self.discrete, self.layout = algorithm.actor, algorithm.discrete, algorithm.layout
        normalizer = algorithm.normalizer
        self.normalize = FrozenNormalizer(normalizer) if normalizer is not None else None
        if self.discrete:
            self.register_buffer("first", torch.as_tensor(policies.first_action(algorithm.action_space)))
        else:
            self.register_buffer("low", torch.as_tensor(algorithm.action_space.low))
            self.register_buffer("high", torch.as_tensor(algorithm.action_space.high))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.layout.module_input(obs)
        if self.normalize is not None:
            x = self.normalize(x)
        action = self.actor.mode(x)
        return action + self.first if self.discrete else torch.minimum(torch.maximum(action, self.low), self.high)


class TRPO:
    """Collect a rollout of n_steps per env, then one trust-region policy step and a critic fit."""

    Config: ClassVar[type] = TRPOConfig
    loop: ClassVar[str] = "env"
    presets: ClassVar[dict[str, Preset]] = PRESETS

    @classmethod
    def check(cls, config: TRPOConfig, spec: EnvSpec) -> None:
        """TRPO's policies are categorical (Discrete; one per dimension for MultiDiscrete and
        MultiBinary) or Gaussian (Box) over flat observations or, with the CNN, images."""
        if policies.category_sizes(spec.action_space) is None and not isinstance(spec.action_space, spaces.Box):
            raise ToolkitError(f"trpo needs a Discrete, MultiDiscrete, MultiBinary (one-dimensional) or Box action "
                               f"space; {spec.id} has {spec.action_space}")
        policies.refuse_gsde_for_discrete(config.use_sde, spec)
        check_network_option(config.network, spec)
        if config.normalize_obs and uses_nature_cnn(config.network, spec.observation_space):
            raise ToolkitError(f"--normalize-obs is for vector observations; {spec.id}'s frames go to the CNN, "
                               "which scales them to [0, 1] itself (drop --normalize-obs)")

    def __init__(self, config: TRPOConfig, context: EnvContext) -> None:
        self.config = config
        torch.manual_seed(context.seed)
        obs_space, action_space = context.observation_space, context.action_space
        obs_dim = int(np.prod(obs_space.shape))
        self.discrete = not isinstance(action_space, spaces.Box)
        self.layout = ObservationLayout(obs_space, image=uses_nature_cnn(config.network, obs_space))

        def encoder() -> NatureCNN | None:  # the policy's and the value function's own
            return NatureCNN.for_images(obs_space) if self.layout.image else None

        sizes = policies.category_sizes(action_space)
        if isinstance(action_space, spaces.Discrete):
            self.actor: nn.Module = CategoricalPolicy(obs_dim, int(action_space.n), config.hidden, encoder())
        elif self.discrete:  # MultiDiscrete, MultiBinary
            self.actor = policies.MultiCategoricalPolicy(network(obs_dim, config.hidden, sum(sizes), encoder()), sizes)
        elif config.use_sde:  # the noise is read from the last hidden layer
            cnn = encoder()
            mean_net = mlp(obs_dim if cnn is None else cnn.out_features, config.hidden, int(np.prod(action_space.shape)))
            body = mean_net[:-1] if cnn is None else nn.Sequential(cnn, mean_net[:-1])
            self.actor = policies.StateDependentNoisePolicy(body, mean_net[-1], config.log_std_init, context.n_envs)
        else:
            self.actor = GaussianPolicy(obs_dim, int(np.prod(action_space.shape)), config.hidden, config.log_std_init,
                                        encoder())
        self.critic = network(obs_dim, config.hidden, 1, encoder())
        self.device = torch.device(context.device)
        self.actor, self.critic = self.actor.to(self.device), self.critic.to(self.device)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.critic_learning_rate)
        self.action_space = action_space
        self.rollout = RolloutStorage(config.n_steps, context.n_envs, self.layout.replay_space,
                                      policies.rollout_action_space(action_space))
        self.first_action = policies.first_action(action_space)
        self.normalizer = RunningNormalizer((obs_dim,)) if config.normalize_obs else None
        self.generator = torch.Generator(self.device).manual_seed(context.seed)
        self.rng = np.random.default_rng(context.seed)
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.updates = 0

    # -- acting ------------------------------------------------------------------------------

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device)

    def normalize(self, obs: np.ndarray, update: bool) -> np.ndarray:
        """Observations as the networks take them: images as they are (uint8, for the CNN);
        anything else flattened to float32 and, with normalize_obs, normalised."""
        if self.layout.image:
            return obs
        flat = self.layout.stored(obs).astype(np.float32)
        if self.normalizer is None:
            return flat
        if update:
            self.normalizer.update(flat)
        return self.normalizer(flat)

    def to_env_action(self, action: np.ndarray) -> np.ndarray:
        if self.discrete:
            return (action + self.first_action).astype(self.action_space.dtype)
        return np.clip(action, self.action_space.low, self.action_space.high).astype(self.action_space.dtype)

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        if self.config.use_sde and policies.gsde_noise_due(self.rollout.step, self.config.sde_sample_freq):
            self.actor.resample_noise(self.generator)
        normalized = self.normalize(obs, update=True)
        with torch.no_grad():
            obs_t = self.tensor(normalized)
            action, log_prob = self.actor.sample(obs_t, self.generator)
            value = self.critic(obs_t).squeeze(1)
        action, log_prob, value = action.cpu().numpy(), log_prob.cpu().numpy(), value.cpu().numpy()
        self._last = (normalized, action, log_prob, value)
        return self.to_env_action(action)

    def observe(self, t: Transition) -> None:
        normalized, action, log_prob, value = self._last
        self.rollout.add(normalized, action, t.reward, self.normalize(t.next_obs, update=False), t.terminated,
                         t.truncated, value, log_prob)

    # -- learning ----------------------------------------------------------------------------

    def update(self, step: int) -> dict[str, float]:
        if not self.rollout.full:
            return {}
        c = self.config
        r = self.rollout
        with torch.no_grad():
            next_values = self.critic(self.tensor(r.next_obs.reshape(-1, *r.next_obs.shape[2:]))).view(r.n_steps, r.n_envs)
        r.compute_advantages(next_values.cpu().numpy(), c.gamma, c.gae_lambda)
        obs = self.tensor(r.obs.reshape(-1, *r.obs.shape[2:]))
        actions = self.tensor(r.actions.reshape(len(obs), *r.actions.shape[2:]))
        advantages = self.tensor(r.advantages.reshape(-1))
        if c.normalize_advantage:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        metrics = self.policy_step(obs, actions, self.tensor(r.log_probs.reshape(-1)), advantages)
        metrics["loss/value"] = self.fit_critic(obs, self.tensor(r.returns.reshape(-1)))
        r.reset()
        self.updates += 1
        return metrics

    def policy_step(self, obs: torch.Tensor, actions: torch.Tensor, old_log_prob: torch.Tensor,
                    advantages: torch.Tensor) -> dict[str, float]:
        """One TRPO step: natural-gradient direction by CG, largest step inside the trust
        region, backtracking line search on the surrogate and the KL bound."""
        c = self.config
        params = [p for p in self.actor.parameters()]
        with torch.no_grad():
            old_dist = self.actor.distribution(obs)

        def surrogate() -> torch.Tensor:
            ratio = torch.exp(self.actor.distribution(obs).log_prob(actions) - old_log_prob)
            return (ratio * advantages).mean()

        def mean_kl() -> torch.Tensor:
            return policies.kl_divergence(old_dist, self.actor.distribution(obs)).mean()

        old_surrogate = surrogate()
        gradient = flat_grad(old_surrogate, params)
        direction = conjugate_gradient(lambda v: fisher_vector_product(mean_kl, params, v, c.cg_damping),
                                       gradient, c.cg_iterations)
        curvature = direction @ fisher_vector_product(mean_kl, params, direction, c.cg_damping)
        step = math.sqrt(2 * c.max_kl / max(float(curvature), 1e-12)) * direction
        old_params = get_flat(params)
        old_value = float(old_surrogate.detach())
        accepted, kl, new_value = 0, 0.0, old_value
        with torch.no_grad():
            for k in range(c.line_search_steps):
                set_flat(params, old_params + (c.line_search_shrink**k) * step)
                kl, new_value = float(mean_kl()), float(surrogate())
                if kl <= c.max_kl and new_value > old_value:
                    accepted = k + 1
                    break
            else:
                set_flat(params, old_params)  # no acceptable step: keep the old policy
                kl, new_value = 0.0, old_value
        with torch.no_grad():
            entropy = float(self.actor.distribution(obs).entropy().mean())
        return {"train/kl": kl, "train/surrogate_improvement": new_value - old_value,
                "train/line_search_steps": float(accepted), "train/entropy": entropy}

    def fit_critic(self, obs: torch.Tensor, returns: torch.Tensor) -> float:
        c = self.config
        losses = []
        for _ in range(c.critic_epochs):
            order = torch.randperm(len(obs), generator=self.generator, device=self.device)
            for start in range(0, len(obs), c.critic_batch_size):
                batch = order[start : start + c.critic_batch_size]
                loss = ((self.critic(obs[batch]).squeeze(1) - returns[batch]) ** 2).mean()
                self.critic_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.critic_optimizer.step()
                losses.append(loss.item())
        return float(np.mean(losses))

    # -- the rest of the protocol ------------------------------------------------------------

    def policy(self) -> DeterministicPolicy:
        return DeterministicPolicy(self)

    def policy_module(self) -> PolicyModule:
        return PolicyModule(self)

    def stochastic_policy(self, seed: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
        """Actions sampled from pi(a|s) (a random generator of its own, seeded with ``seed``; with
        use_sde, a noise matrix drawn afresh for each call)."""
        generator = seeded_generator(self.device, seed)

        def sample(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                action, _ = policies.sample_afresh(self.actor, self.tensor(self.normalize(obs, update=False)), generator)
            return self.to_env_action(action.cpu().numpy())

        return sample

    def state_dict(self) -> dict[str, Any]:
        state = {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "updates": self.updates,
            "rollout": self.rollout.state_dict(),  # a checkpoint can fall in the middle of a rollout
        }
        if self.normalizer is not None:
            state["normalizer"] = self.normalizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.generator.set_state(state["generator"])
        self.updates = int(state["updates"])
        self.rollout.load_state_dict(state["rollout"])
        if self.normalizer is not None:
            self.normalizer.load_state_dict(state["normalizer"])
