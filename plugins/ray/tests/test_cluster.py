"""On a Ray cluster of two (simulated) nodes, a sweep places trials on both, and Ape-X places
its actors on both."""

import json

import pytest

from toolkit.cli import main

# In a parallel suite (pytest -n) the sweep tests run one after another in one worker: each
# starts its own local Ray (or cluster) sized to the whole machine.
pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    yield cluster
    cluster.shutdown()


def test_a_sweep_on_a_two_node_cluster_runs_trials_on_both_nodes(cluster, tmp_path):
    directory = tmp_path / "sweep"
    code = main(["sweep", "random", "--env", "CartPole-v1", "--steps", "300", "--eval-every", "0",
                 "--eval-episodes", "1", "--seeds", "2", "--concurrency", "2", "--address", cluster.address,
                 "--sweep-dir", str(directory)])
    assert code == 0
    placements = [json.loads(path.read_text()) for path in (directory / "runs").glob("*/trial.json")]
    assert sorted(p["config"]["seed"] for p in placements) == [0, 1]
    assert len({p["starts"][-1]["node_id"] for p in placements}) == 2  # one trial per one-CPU node


def test_apex_places_its_actors_on_both_nodes(cluster, tmp_path):
    run_dir = tmp_path / "apex"
    assert main(["train", "apex", "--env", "CartPole-v1", "--steps", "600", "--actors", "2", "--fragment", "25",
                 "--hidden", "32", "--learning-starts", "200", "--eval-every", "0", "--eval-episodes", "1",
                 "--log-every", "500", "--address", cluster.address, "--run-dir", str(run_dir), "--no-progress"]) == 0
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert max(r.get("perf/actor_nodes", 0) for r in records) == 2  # one actor per one-CPU node
