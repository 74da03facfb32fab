from dataclasses import dataclass
from typing import Literal, Optional

import pytest

from toolkit.config import (RunConfig, coerce, field_docs, parse_options, read_toml, to_toml,
                            values_from_toml)
from toolkit.errors import ToolkitError
from toolkit.random_agent import RandomConfig


@dataclass(frozen=True)
class Sample:
    lr: float = 1e-3
    """Learning rate."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden widths."""
    double: bool = False
    """Double Q-learning."""
    loss: Literal["huber", "mse"] = "huber"
    """Loss."""
    limit: Optional[int] = None
    """Optional limit."""


def test_field_docstrings_become_help():
    docs = field_docs(Sample)
    assert docs["lr"] == "Learning rate."
    assert docs["double"] == "Double Q-learning."
    assert field_docs(RunConfig)["steps"].startswith("Total env steps")


def test_parse_options_converts_each_type():
    values = parse_options(["--lr", "3e-4", "--hidden=32,16", "--double", "--loss", "mse", "--limit", "5",
                            "--steps", "1e6", "--no-track"], [RunConfig, Sample])
    assert values == {"lr": 3e-4, "hidden": (32, 16), "double": True, "loss": "mse", "limit": 5,
                      "steps": 1_000_000, "track": False}


@pytest.mark.parametrize("argv, message", [
    (["--stpes", "10"], "unknown option '--stpes'; did you mean: --steps"),
    (["--steps", "ten"], "invalid value for --steps: 'ten' is not an integer"),
    (["--steps", "2.5"], "'2.5' is not an integer"),
    (["--lr", "fast"], "invalid value for --lr: 'fast' is not a number"),
    (["--loss", "hubber"], "did you mean: huber"),
    (["--double", "maybe"], "unexpected argument 'maybe'"),
    (["--lr"], "option --lr needs a value"),
])
def test_bad_options_are_one_line_errors(argv, message):
    with pytest.raises(ToolkitError) as info:
        parse_options(argv, [RunConfig, Sample])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_toml_round_trip(tmp_path):
    run = RunConfig(env="Pong", steps=123, track=True)
    path = tmp_path / "config.toml"
    path.write_text(to_toml("sample", run, Sample(hidden=(8,), limit=None)))
    document = read_toml(path)
    assert document["algorithm"] == "sample"
    values = values_from_toml(document, {"run": RunConfig, "algo": Sample}, str(path))
    assert values["run"]["env"] == "Pong" and values["run"]["steps"] == 123 and values["run"]["track"] is True
    assert values["algo"]["hidden"] == (8,) and "limit" not in values["algo"]


def test_flat_toml_keys_are_assigned_to_their_section(tmp_path):
    values = values_from_toml({"steps": 5, "lr": 0.1}, {"run": RunConfig, "algo": Sample}, "x.toml")
    assert values == {"run": {"steps": 5}, "algo": {"lr": 0.1}}


def test_unknown_toml_key_and_wrong_type_are_errors():
    with pytest.raises(ToolkitError, match="unknown config key in x.toml 'run.stepz'; did you mean: run.steps"):
        values_from_toml({"run": {"stepz": 5}}, {"run": RunConfig, "algo": RandomConfig}, "x.toml")
    with pytest.raises(ToolkitError, match="steps in x.toml: 'many' is not an integer"):
        values_from_toml({"run": {"steps": "many"}}, {"run": RunConfig, "algo": RandomConfig}, "x.toml")


def test_toml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[run\nsteps = 3\n")
    with pytest.raises(ToolkitError, match="bad.toml is not valid TOML"):
        read_toml(path)


def test_coerce_rejects_booleans_as_numbers():
    with pytest.raises(ToolkitError):
        coerce(True, int, "x")
    assert coerce("1_000", int, "x") == 1000
