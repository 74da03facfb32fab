"""toolkit-td3: registers ``td3``; the implementation (toolkit_td3.td3) loads on use."""

from toolkit import hookimpl


@hookimpl
def register_algorithms(register):
    register("td3", "toolkit_td3.td3:TD3",
             "TD3 (Fujimoto et al. 2018): twin critics, delayed policy updates, target policy smoothing")
