"""Core's own defaults, registered through the same hooks as any plugin's."""

from __future__ import annotations

from toolkit import hookimpl


@hookimpl
def register_algorithms(register):
    register("random", "toolkit.random_agent:RandomAgent", "Uniform random actions: the baseline")


@hookimpl
def register_samplers(register):
    register("uniform", "toolkit.replay:UniformSampler", "Every stored transition equally likely")


@hookimpl
def register_loggers(register):
    register("jsonl", "toolkit.loggers:JsonlLogger", "metrics.jsonl in the run directory (always on)")
    register("wandb", "toolkit.loggers:WandbLogger", "Weights & Biases, online or offline (--track)")
    register("tensorboard", "toolkit.file_loggers:TensorBoardLogger",
             "TensorBoard event files in <run>/tensorboard: scalars, sample grids, evaluation videos")
    register("csv", "toolkit.file_loggers:CsvLogger", "metrics.csv in the run directory, one column per key")


@hookimpl
def register_datasets(register):
    from toolkit.datasets import register as register_core_datasets

    register_core_datasets(register)
