"""toolkit-sac: registers ``sac``; the implementation (toolkit_sac.sac) loads on use."""

from toolkit import hookimpl


@hookimpl
def register_algorithms(register):
    register("sac", "toolkit_sac.sac:SAC",
             "Soft Actor-Critic (Haarnoja et al. 2018) with automatic entropy tuning, continuous actions")
