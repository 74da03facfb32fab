"""A sweep on a Ray cluster of two (simulated) nodes places trials on both."""

import json

from toolkit.cli import main


def test_a_sweep_on_a_two_node_cluster_runs_trials_on_both_nodes(tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        directory = tmp_path / "sweep"
        code = main(["sweep", "random", "--env", "CartPole-v1", "--steps", "300", "--eval-every", "0",
                     "--eval-episodes", "1", "--seeds", "2", "--concurrency", "2", "--address", cluster.address,
                     "--sweep-dir", str(directory)])
        assert code == 0
        placements = [json.loads(path.read_text()) for path in (directory / "runs").glob("*/trial.json")]
        assert sorted(p["config"]["seed"] for p in placements) == [0, 1]
        assert len({p["starts"][-1]["node_id"] for p in placements}) == 2  # one trial per one-CPU node
    finally:
        cluster.shutdown()
