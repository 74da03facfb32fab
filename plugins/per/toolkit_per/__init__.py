"""toolkit-per: the ``prioritized`` (proportional) and ``rank`` replay samplers."""

from toolkit import hookimpl


@hookimpl
def register_samplers(register):
    register("prioritized", "toolkit_per.per:ProportionalSampler",
             "Prioritized replay, proportional to |TD error| (sum tree; alpha 0.6, beta 0.4 -> 1)")
    register("rank", "toolkit_per.per:RankSampler",
             "Prioritized replay, rank-based: p = 1/rank(|TD error|) (alpha 0.7, beta 0.5 -> 1)")
