"""Search specs from the command line, and the sweep's checks before Ray starts (no Ray here)."""

import pytest

from toolkit.cli import main
from toolkit.errors import ToolkitError
from toolkit_ray.search import as_flag_value, parse_dimension, parse_grid


def test_dimensions_parse_to_their_kind_and_values():
    lr = parse_dimension("learning_rate=loguniform(1e-5, 1e-2)")
    assert (lr.name, lr.kind, lr.values, lr.log_scale) == ("learning_rate", "loguniform", (1e-5, 1e-2), True)
    assert parse_dimension("n-step=int(1,5)").values == (1, 5) and parse_dimension("n-step=int(1,5)").name == "n_step"
    assert parse_dimension("network=choice(mlp, nature)").values == ("mlp", "nature")
    assert parse_dimension("gamma=choice(0.9,0.99)").values == (0.9, 0.99)
    assert parse_dimension("tau=uniform(0.001,1)").kind == "uniform"
    assert as_flag_value(1e-5 / 3) == repr(1e-5 / 3) and as_flag_value(3) == "3"


def test_a_grid_axis_runs_every_value_with_every_seed():
    from ray import tune

    from toolkit_ray.sweep import SweepOptions, prepare

    axis = parse_grid("replay=uniform, prioritized,rank")
    assert (axis.name, axis.values) == ("replay", ("uniform", "prioritized", "rank"))
    assert parse_grid("n-step=1,3").values == (1, 3) and parse_grid("n-step=1,3").name == "n_step"
    sweep = prepare(SweepOptions("dqn", ["--env", "CartPole-v1"], seeds=2, grid=["replay=uniform,rank", "n_step=1,3"]))
    space = sweep.param_space
    assert space["replay"] == tune.grid_search(["uniform", "rank"]) and space["seed"] == tune.grid_search([0, 1])
    assert sweep.varied == ["replay", "n_step", "seed"]
    from ray.tune.search.variant_generator import generate_variants

    assert len(list(generate_variants(space))) == 8  # 2 x 2 values x 2 seeds


def test_int_dimension_includes_its_upper_end_in_tune():
    from ray import tune

    domain = parse_dimension("n_step=int(1,3)").to_tune()
    assert isinstance(domain, tune.search.sample.Integer) and (domain.lower, domain.upper) == (1, 4)


@pytest.mark.parametrize("spec, phrase", [
    ("learning_rate", "expected NAME=KIND(ARGS)"),
    ("learning_rate=logunifrom(1e-5,1e-2)", "did you mean: loguniform"),
    ("learning_rate=loguniform(0,1e-2)", "loguniform needs low > 0"),
    ("learning_rate=uniform(1,1)", "needs finite low < high"),
    ("learning_rate=uniform(1)", "takes two numbers"),
    ("n_step=int(1.5,3)", "takes integers"),
    ("network=choice()", "needs at least one value"),
])
def test_malformed_specs_are_one_line_errors(spec, phrase):
    with pytest.raises(ToolkitError, match=None) as error:
        parse_dimension(spec)
    assert phrase in str(error.value)


SWEEP_REFUSALS = [
    (["sweep"], "needs an algorithm"),
    (["sweep", "dqm", "--seeds", "2"], "unknown algorithm 'dqm'"),
    (["sweep", "dqn", "--env", "CartPole-v1"], "nothing to sweep"),
    (["sweep", "dqn", "--seeds", "0"], "--seeds must be >= 1"),
    (["sweep", "dqn", "--seed-list", "1,x"], "comma-separated integers"),
    (["sweep", "dqn", "--seed-list", "1,1"], "distinct seeds"),
    (["sweep", "dqn", "--seeds", "2", "--search", "gamma=uniform(0.9,0.99)"], "without --seeds"),
    (["sweep", "dqn", "--grid", "replay=uniform", "--search", "gamma=uniform(0.9,0.99)"], "without --seeds/--seed-list/--grid"),
    (["sweep", "dqn", "--grid", "replay=uniform,prioritised"], "unknown sampler 'prioritised'; did you mean: prioritized"),
    (["sweep", "dqn", "--grid", "gamma=0.9,1.5"], "--gamma must be >= 0 and <= 1, got 1.5"),
    (["sweep", "dqn", "--grid", "replay"], "expected NAME=VALUE,VALUE"),
    (["sweep", "dqn", "--grid", "replay=rank,rank"], "a value is given twice"),
    (["sweep", "dqn", "--grid", "seed=1,2"], "not as a --grid axis"),
    (["sweep", "dqn", "--grid", "gamma=0.9", "--grid", "gamma=0.8"], "a grid axis) once"),
    (["sweep", "dqn", "--search", "learning_rat=loguniform(1e-5,1e-2)"], "unknown option '--learning-rat'"),
    (["sweep", "dqn", "--search", "gamma=uniform(0.5,1.5)"], "--gamma must be >= 0 and <= 1, got 1.5"),
    (["sweep", "dqn", "--search", "network=choice(mlp,resnet)"], "unknown choice 'resnet'"),
    (["sweep", "dqn", "--search", "gamma=uniform(0.9,0.99)", "--search", "gamma=uniform(0.5,0.6)"], "searched (or be a grid axis) once"),
    (["sweep", "dqn", "--search", "gamma=uniform(0.9,0.99)", "--mode", "up"], "--mode must be max or min"),
    (["sweep", "dqn", "--search", "gamma=uniform(0.9,0.99)", "--pruner", "hyperband"], "--pruner must be"),
    (["sweep", "dqn", "--search", "gamma=uniform(0.9,0.99)", "--trials", "0"], "--trials must be >= 1"),
    (["sweep", "dqn", "--seeds", "2", "--learning-rate", "-1"], "--learning-rate must be > 0"),
    (["sweep", "dqn", "--seeds", "2", "--run-dir", "x"], "chooses each trial's --run-dir"),
    (["sweep", "vae", "--seeds", "2"], "name the metric to optimise"),
    (["sweep", "--resume", "{tmp}"], "is not a sweep directory"),
]


@pytest.mark.parametrize("argv, phrase", SWEEP_REFUSALS, ids=[" ".join(a) for a, _ in SWEEP_REFUSALS])
def test_a_refused_sweep_is_one_line_and_starts_nothing(argv, phrase, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main([a.format(tmp=tmp_path) for a in argv])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], lines
    assert list(tmp_path.iterdir()) == []
