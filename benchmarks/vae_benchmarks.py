"""The VAE trainers: held-out NLL on binarised digits, and training throughput against pythae.

    python benchmarks/vae_benchmarks.py nll [--models vae planar10 planar40 iwae5] [--seeds 3]
        [--epochs 300] [--eval-k 5000] [--latent-dim 50] [--jobs 2] [--plot vae_samples.png]
        [--results benchmarks/results/vae_nll.jsonl]
    python benchmarks/vae_benchmarks.py speed [--epochs 100 400]

``nll``: every model is ``toolkit train`` on ``digits`` (binarised afresh for each batch) with
the same architecture (MLP 200-200, 50 latents unless `--latent-dim`; the IWAE paper's one-layer model), Adam 1e-3,
batch 100, the same number of epochs and the same KL annealing over the first third of them
(Rezende & Mohamed anneal the KL weight too; without it the flow models settle in posterior
collapse, KL near 0, on these data); the only differences are the posterior
(``planar10``/``planar40``: planar flows of length 10/40) and the bound (``iwae5``: k = 5).
The final evaluation scores the 360 held-out digits, binarised once with a fixed seed:
-log p(x) by importance sampling with ``--eval-k`` samples (nats), and the ELBO.

``speed``: the same VAE (same layers, Bernoulli likelihood, Adam 1e-3, batch 100) on the same
thresholded digits, trained by ``toolkit train vae`` and by pythae's ``TrainingPipeline``
(its BaseTrainer) in one process, one after the other; each at two lengths, the rate is the
difference in examples over the difference in seconds, so start-up, saving and the final
evaluation cancel out; three alternating rounds, the median rate of each. Falls back to a
plain PyTorch loop when pythae does not import.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from common import image_panel, run_workers

TRAIN_EXAMPLES, BATCH = 1437, 100


def model(label: str) -> tuple[str, dict]:
    """A model label -> (algorithm, overrides): ``vae``, ``planarK`` / ``radialK`` (a flow of
    length K), ``iwaeK`` (K importance samples)."""
    match = re.fullmatch(r"(vae|planar|radial|iwae)(\d*)", label)
    if match is None or (match[1] != "vae") != bool(match[2]):
        raise SystemExit(f"unknown model {label!r}: vae, planarK, radialK or iwaeK (e.g. planar10, iwae5)")
    kind, number = match[1], int(match[2] or 0)
    if kind == "vae":
        return "vae", {}
    if kind == "iwae":
        return "iwae", {"importance_samples": number}
    return "vae", {"flow": kind, "flow_length": number}


def run_toolkit(label: str, seed: int, epochs: int, eval_k: int, latent_dim: int) -> dict:
    import numpy as np
    import torch

    import toolkit
    from toolkit.run import load_generative

    torch.set_num_threads(1)
    algo, overrides = model(label)
    steps = epochs * (TRAIN_EXAMPLES // BATCH)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_dir = toolkit.train(algo, data="digits", seed=seed, steps=steps, eval_every=steps, checkpoint_every=steps,
                                eval_importance_samples=eval_k, eval_examples=0, progress=False,
                                kl_anneal_updates=steps // 3, latent_dim=latent_dim,
                                run_dir=str(Path(tmp) / "run"), **overrides)
        seconds = time.perf_counter() - start
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        torch.manual_seed(seed)
        samples = load_generative(run_dir).sample(64)
    final = {k[5:]: v for r in records for k, v in r.items() if k.startswith("eval/")}
    return {"final": final["nll"], "metrics": final, "sps": steps / seconds, "seconds": seconds,
            "samples": np.round(samples, 3).tolist()}


def nll_table(results: dict, labels: list[str], seeds: int, epochs: int, eval_k: int, latent_dim: int) -> None:
    print(f"\nbinarised digits, {latent_dim} latents, {epochs} epochs, {seeds} seeds, NLL with k = {eval_k} "
          "(nats, lower is better)")
    print("\n| model | held-out NLL | held-out ELBO | KL | per seed (NLL) | seconds per run |")
    print("|---|---|---|---|---|---|")
    for label in labels:
        runs = [results[(label, "digits", s)] for s in range(seeds)]

        def cell(key: str, sign: float = 1.0) -> str:
            values = [sign * r["metrics"][key] for r in runs]
            return f"{statistics.mean(values):.2f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.2f}"

        print(f"| {label} | {cell('nll')} | {cell('elbo')} | {cell('kl')} | "
              + ", ".join(f"{r['metrics']['nll']:.2f}" for r in runs)
              + f" | {statistics.mean(r['seconds'] for r in runs):.0f} |")


def plot_samples(results: dict, labels: list[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(labels), figsize=(3 * len(labels), 3.2), squeeze=False)
    for ax, label in zip(axes[0], labels):
        result = results[(label, "digits", 0)]
        image_panel(ax, result["samples"], f"{label}: NLL {result['metrics']['nll']:.2f}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def speed(lengths: list[int]) -> None:
    import numpy as np
    import torch
    from torch import nn

    import toolkit
    from toolkit.datasets import load_dataset

    data = torch.from_numpy((load_dataset("digits", "train")[0] > 0.5).astype(np.float32))

    def layers():
        torch.manual_seed(0)
        encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, 100))
        decoder = nn.Sequential(nn.Linear(50, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, 64))
        return encoder, decoder

    def ours(epochs: int) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            toolkit.train("vae", data="digits", binarize="threshold", steps=epochs * (TRAIN_EXAMPLES // BATCH),
                          eval_every=0, checkpoint_every=0, eval_importance_samples=1, progress=False,
                          run_dir=str(Path(tmp) / "run"))
            return time.perf_counter() - start

    def pythae_run(epochs: int) -> float:
        from pythae.models import VAE, VAEConfig
        from pythae.models.base.base_utils import ModelOutput
        from pythae.models.nn import BaseDecoder, BaseEncoder
        from pythae.pipelines import TrainingPipeline
        from pythae.trainers import BaseTrainerConfig

        encoder_layers, decoder_layers = layers()

        class Encoder(BaseEncoder):
            def __init__(self):
                super().__init__()
                self.net = encoder_layers

            def forward(self, x):
                out = self.net(x)
                return ModelOutput(embedding=out[:, :50], log_covariance=out[:, 50:])

        class Decoder(BaseDecoder):
            def __init__(self):
                super().__init__()
                self.net = decoder_layers

            def forward(self, z):
                return ModelOutput(reconstruction=torch.sigmoid(self.net(z)).view(-1, 1, 8, 8))

        model = VAE(VAEConfig(input_dim=(1, 8, 8), latent_dim=50, reconstruction_loss="bce"), encoder=Encoder(),
                    decoder=Decoder())
        with tempfile.TemporaryDirectory() as tmp:
            config = BaseTrainerConfig(output_dir=tmp, num_epochs=epochs, learning_rate=1e-3,
                                       per_device_train_batch_size=BATCH, no_cuda=True, steps_saving=None,
                                       optimizer_cls="Adam")
            start = time.perf_counter()
            TrainingPipeline(training_config=config, model=model)(train_data=data)
            return time.perf_counter() - start

    def plain(epochs: int) -> float:
        encoder, decoder = layers()
        optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data), batch_size=BATCH, shuffle=True)
        start = time.perf_counter()
        for _ in range(epochs):
            for (x,) in loader:
                out = encoder(x)
                mean, log_var = out[:, :50], out[:, 50:]
                z = mean + (0.5 * log_var).exp() * torch.randn_like(mean)
                logits = decoder(z)
                reconstruction = nn.functional.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="sum")
                kl = -0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum()
                loss = (reconstruction + kl) / len(x)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return time.perf_counter() - start

    try:
        import pythae  # noqa: F401

        anchor, anchor_name, anchor_examples = pythae_run, "pythae 0.1.2 (TrainingPipeline)", TRAIN_EXAMPLES
    except ImportError:
        anchor, anchor_name, anchor_examples = plain, "a plain PyTorch loop", TRAIN_EXAMPLES
    short, long = lengths
    rates = {"toolkit": [], "anchor": []}
    for _ in range(3):  # alternate, so drift in the machine's speed hits both; the median drops one outlier
        rates["anchor"].append((long - short) * anchor_examples / (anchor(long) - anchor(short)))
        rates["toolkit"].append((long - short) * (TRAIN_EXAMPLES // BATCH) * BATCH / (ours(long) - ours(short)))
    tk, ref = statistics.median(rates["toolkit"]), statistics.median(rates["anchor"])
    print(f"VAE on thresholded digits (MLP 200-200, 50 latents, batch {BATCH}, {torch.get_num_threads()} threads): "
          f"toolkit {tk:.0f} examples/s, {anchor_name} {ref:.0f} examples/s, ratio {tk / ref:.2f} (all rates: {rates})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["nll", "speed"])
    parser.add_argument("--models", nargs="+", default=["vae", "planar10", "planar40", "iwae5"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, nargs="+", default=None, help="epochs per run (speed: two lengths)")
    parser.add_argument("--eval-k", type=int, default=5000)
    parser.add_argument("--latent-dim", type=int, default=50,
                        help="latents of every model (nll); a small one makes the posterior's shape matter")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--results", type=Path, help="append finished runs here and skip those already in it")
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "DATA", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.what == "speed":
        speed(args.epochs or [100, 400])
        return
    epochs = (args.epochs or [300])[0]
    if args.worker:
        label, _, seed = args.worker
        print(json.dumps(run_toolkit(label, int(seed), epochs, args.eval_k, args.latent_dim)))
        return
    for label in args.models:
        model(label)  # refuse an unknown label before starting any run
    jobs = [(label, "digits", seed) for seed in range(args.seeds) for label in args.models]
    results = run_workers(__file__, jobs, args.jobs, ["nll", "--epochs", str(epochs), "--eval-k", str(args.eval_k),
                                                      "--latent-dim", str(args.latent_dim)],
                          results_file=args.results)
    nll_table(results, args.models, args.seeds, epochs, args.eval_k, args.latent_dim)
    if args.plot:
        plot_samples(results, args.models, args.plot)


if __name__ == "__main__":
    main()
