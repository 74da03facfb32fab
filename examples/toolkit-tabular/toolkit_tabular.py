"""Example third-party plugin: an ordinary pip package with one entry point.

    [project.entry-points.toolkit]
    tabular = "toolkit_tabular"

This module only registers; the algorithm lives in ``toolkit_tabular_algo`` and is imported
when it is first used, which keeps ``toolkit list`` fast.
"""

from toolkit import hookimpl


@hookimpl
def register_algorithms(register):
    register("tabular-q", "toolkit_tabular_algo:TabularQ",
             "Tabular Q-learning from replay, for envs with one-hot observations")


@hookimpl
def register_samplers(register):
    register("recent", "toolkit_tabular_algo:RecentSampler",
             "Uniform over the most recently stored transitions")
