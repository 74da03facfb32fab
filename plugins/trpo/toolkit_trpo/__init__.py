"""toolkit-trpo: registers ``trpo``; the implementation (toolkit_trpo.trpo) loads on use."""

from toolkit import hookimpl


@hookimpl
def register_algorithms(register):
    register("trpo", "toolkit_trpo.trpo:TRPO",
             "Trust Region Policy Optimization (Schulman et al. 2015) with GAE, discrete and continuous actions")
