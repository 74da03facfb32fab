"""The GAN trainers: mode coverage on 2-D mixtures, a Frechet distance on digits, and DCGAN's
training throughput against a plain PyTorch loop.

    python benchmarks/gan_benchmarks.py mixtures [--datasets ring8 grid25] [--algos gan wgan wgan-gp began gmmn]
        [--seeds 3] [--updates N] [--jobs 2] [--plot mixtures.png] [--results benchmarks/results/gan_mixtures.jsonl]
    python benchmarks/gan_benchmarks.py digits [--algos gan dcgan wgan wgan-gp began infogan gmmn]
        [--seeds 3] [--updates N] [--jobs 2] [--plot digits_grids.png] [--results benchmarks/results/gan_digits.jsonl]
    python benchmarks/gan_benchmarks.py speed [--data digits32] [--updates 200 400]

Every run is ``toolkit train ALGO --data DATA --seed S`` with nothing else: the algorithm's
defaults, which on these datasets are its preset for them (``wgan-gp`` is ``wgan --preset
gp``), networks and budget included; ``--updates N`` instead gives every run N *generator*
updates (the WGANs then get n_critic = 5 critic updates for each). Each run's final
evaluation gives the numbers: on the mixtures, modes covered and the fraction of
high-quality samples (2,500 samples; toolkit_gan.metrics); on digits, FD-digits and
IS-digits (a small classifier's features, not Inception's; real held-out digits score about
6.7 and 9.2). ``--plot`` draws the first seed's samples of each (algorithm, dataset).

``speed``: the same DCGAN (the networks built by toolkit_gan.networks, Adam 2e-4 / 0.5) trained
by ``toolkit train dcgan`` and by a straightforward PyTorch loop (DataLoader over a
TensorDataset, shuffled, BCEWithLogitsLoss, a discriminator step then a generator step), in
one process, one after the other. Each is timed at two run lengths and the rate is the
difference in updates over the difference in seconds, so start-up and the final evaluation
cancel out of both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from common import image_panel, run_workers

ALGOS = {  # label -> (algorithm, preset, critic updates per generator update)
    "gan": ("gan", None, 1), "dcgan": ("dcgan", None, 1), "wgan": ("wgan", None, 5), "wgan-gp": ("wgan", "gp", 5),
    "began": ("began", None, 1), "infogan": ("infogan", None, 1), "gmmn": ("gmmn", None, 1),
}


def run_toolkit(label: str, dataset: str, seed: int, updates: int | None) -> dict:
    import numpy as np
    import torch

    import toolkit
    from toolkit.planning import plan
    from toolkit.run import load_generative

    algo, preset, per_generator_step = ALGOS[label]
    steps = updates * per_generator_step if updates else plan(algo, {"data": dataset}, preset=preset).run.steps
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_dir = toolkit.train(algo, preset=preset, data=dataset, seed=seed, steps=steps, eval_every=steps,
                                checkpoint_every=steps, progress=False, run_dir=str(Path(tmp) / "run"))
        seconds = time.perf_counter() - start
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        torch.manual_seed(seed)
        samples = load_generative(run_dir).sample(1000 if dataset in ("ring8", "grid25") else 64)
    final = {k[5:]: v for r in records for k, v in r.items() if k.startswith("eval/")}
    main = final.get("modes_covered", final.get(f"FD-{dataset}", float("nan")))
    return {"final": main, "metrics": final, "steps": steps, "sps": steps / seconds, "seconds": seconds,
            "samples": np.round(samples, 4).tolist()}


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.2f}"


def quality_table(results: dict, labels: list[str], datasets: list[str], seeds: int, keys: list[str]) -> None:
    print("\n| dataset | algorithm | updates | " + " | ".join(keys) + " | per seed (" + keys[0] + ") | seconds per run |")
    print("|---|---|---|" + "---|" * (len(keys) + 2))
    for dataset in datasets:
        for label in labels:
            runs = [results[(label, dataset, s)] for s in range(seeds)]
            cells = [mean_std([r["metrics"][k] for r in runs]) for k in keys]
            per_seed = ", ".join(f"{r['metrics'][keys[0]]:.4g}" for r in runs)
            print(f"| {dataset} | {label} | {runs[0].get('steps', '')} | " + " | ".join(cells) + f" | {per_seed} | "
                  f"{statistics.mean(r['seconds'] for r in runs):.0f} |")


def plot_samples(results: dict, labels: list[str], datasets: list[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from toolkit.datasets import load_dataset

    fig, axes = plt.subplots(len(datasets), len(labels), figsize=(3 * len(labels), 3 * len(datasets)), squeeze=False)
    for row, dataset in enumerate(datasets):
        reference = load_dataset(dataset, "test")[0]
        for col, label in enumerate(labels):
            ax = axes[row][col]
            result = results[(label, dataset, 0)]
            samples = np.array(result["samples"], dtype=np.float32)
            if samples.ndim == 2:
                ax.scatter(reference[:, 0], reference[:, 1], s=1, color="0.75")
                ax.scatter(samples[:, 0], samples[:, 1], s=1, color="tab:blue", alpha=0.5)
                ax.set_aspect("equal")
                ax.set_title(f"{label} on {dataset}: {result['metrics']['modes_covered']:.0f} modes, "
                             f"{result['metrics']['high_quality']:.0%} HQ", fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                image_panel(ax, samples, f"{label}: FD-{dataset} {result['metrics'][f'FD-{dataset}']:.1f}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def speed(dataset: str, lengths: list[int]) -> None:
    import torch

    import toolkit
    from toolkit.datasets import load_dataset
    from toolkit_gan.gan import DCGANConfig
    from toolkit_gan.networks import discriminator, generator

    config = DCGANConfig()
    data = torch.from_numpy(load_dataset(dataset, "train")[0])

    def reference(updates: int) -> float:
        torch.manual_seed(0)
        g = generator(config.latent_dim, tuple(data.shape[1:]), "conv", (), config.width, "batch")
        d = discriminator(tuple(data.shape[1:]), "conv", (), config.width, "batch")
        g_opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        d_opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        criterion = torch.nn.BCEWithLogitsLoss()
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data), batch_size=config.batch_size,
                                             shuffle=True, drop_last=True)
        start, done = time.perf_counter(), 0
        while done < updates:
            for (real,) in loader:
                ones, zeros = torch.ones(len(real)), torch.zeros(len(real))
                fake = g(torch.randn(len(real), config.latent_dim))
                d_loss = criterion(d(real), ones) + criterion(d(fake.detach()), zeros)
                d_opt.zero_grad()
                d_loss.backward()
                d_opt.step()
                g_loss = criterion(d(fake), ones)
                g_opt.zero_grad()
                g_loss.backward()
                g_opt.step()
                done += 1
                if done == updates:
                    break
        return time.perf_counter() - start

    def ours(updates: int) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            toolkit.train("dcgan", data=dataset, steps=updates, eval_every=0, checkpoint_every=0, progress=False,
                          run_dir=str(Path(tmp) / "run"))
            return time.perf_counter() - start

    from toolkit_gan.metrics import dataset_classifier

    dataset_classifier(dataset, None)  # trained and cached once now, not inside the first timed run
    short, long = lengths
    rates = {"toolkit": [], "reference": []}
    for _ in range(2):  # alternate, so drift in the machine's speed hits both
        for name, fn in (("reference", reference), ("toolkit", ours)):
            rates[name].append((long - short) / (fn(long) - fn(short)))
    tk, ref = max(rates["toolkit"]), max(rates["reference"])
    print(f"DCGAN on {dataset} (batch {config.batch_size}, width {config.width}, {torch.get_num_threads()} threads): "
          f"toolkit {tk:.1f} updates/s, plain PyTorch loop {ref:.1f} updates/s, ratio {tk / ref:.2f} "
          f"(all rates: {rates})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["mixtures", "digits", "speed"])
    parser.add_argument("--datasets", nargs="+", default=None)
    parser.add_argument("--algos", nargs="+", default=None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--updates", type=int, nargs="+", default=None,
                        help="generator updates per run (speed: two run lengths)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--data", default="digits32", help="speed: the dataset")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--results", type=Path, help="keep finished runs here (JSON lines) and reuse them")
    parser.add_argument("--worker", nargs=3, metavar=("ALGO", "DATA", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.what == "speed":
        speed(args.data, args.updates or [200, 400])
        return
    updates = args.updates[0] if args.updates else None
    if args.worker:
        label, dataset, seed = args.worker
        print(json.dumps(run_toolkit(label, dataset, int(seed), updates)))
        return
    if args.what == "mixtures":
        datasets = args.datasets or ["ring8", "grid25"]
        labels = args.algos or ["gan", "wgan", "wgan-gp", "began", "gmmn"]
        keys = ["modes_covered", "high_quality"]
    else:
        datasets = args.datasets or ["digits"]
        labels = args.algos or ["gan", "dcgan", "wgan", "wgan-gp", "began", "infogan", "gmmn"]
        keys = [f"FD-{datasets[0]}", f"IS-{datasets[0]}"]
    jobs = [(label, dataset, seed) for dataset in datasets for seed in range(args.seeds) for label in labels]
    results = run_workers(__file__, jobs, args.jobs, [args.what, *(["--updates", str(updates)] if updates else [])],
                          results_file=args.results)
    print(f"\n{f'{updates} generator updates per run' if updates else 'each algorithm at its defaults'}, "
          f"{args.seeds} seeds")
    quality_table(results, labels, datasets, args.seeds, keys)
    if args.plot:
        plot_samples(results, labels, datasets, args.plot)


if __name__ == "__main__":
    main()
