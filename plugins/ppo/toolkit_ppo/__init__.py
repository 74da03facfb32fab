"""toolkit-ppo: registers ``ppo``; the implementation (toolkit_ppo.ppo) loads on use."""

from toolkit import hookimpl


@hookimpl
def register_algorithms(register):
    register("ppo", "toolkit_ppo.ppo:PPO",
             "Proximal Policy Optimization (Schulman et al. 2017): clipped surrogate, GAE, discrete and continuous actions")
