"""toolkit-ray: scale-out on Ray. ``toolkit sweep`` (parallel seeds, grids, hyperparameter
search on Ray Tune) and the ``apex`` algorithm (Ape-X DQN: actors and replay shards as Ray actors).

Registration only: Ray, Optuna, torch and the implementations are imported when a sweep or an
apex run starts, so ``toolkit list`` and ``toolkit --help`` never import Ray.
"""

from typing import Optional

import typer  # the CLI's own dependency, already imported when commands are registered

from toolkit import hookimpl

_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@hookimpl
def register_algorithms(register):
    register("apex", "toolkit_ray.apex:ApexDQN",
             "Ape-X DQN (Horgan et al. 2018): distributed prioritized replay, actors on Ray")


@hookimpl
def register_commands(cli):
    @cli.command(context_settings=_PASS_THROUGH)
    def sweep(
        ctx: typer.Context,
        algo: Optional[str] = typer.Argument(None, help="Algorithm to sweep (any train option may follow)"),
        seeds: Optional[int] = typer.Option(None, "--seeds", help="Run the same config over seeds 0..N-1"),
        seed_list: Optional[str] = typer.Option(None, "--seed-list", help="Comma-separated seeds, e.g. 0,3,7"),
        search: list[str] = typer.Option([], "--search", help="NAME=loguniform(a,b) | uniform(a,b) | int(a,b) | "
                                                               "choice(v1,v2,...); repeatable"),
        grid: list[str] = typer.Option([], "--grid", help="NAME=V1,V2,...: run every value (with every seed); "
                                                           "repeatable"),
        trials: int = typer.Option(8, "--trials", help="Trials of a --search"),
        pruner: str = typer.Option("asha", "--pruner", help="asha | median | none (for --search)"),
        metric: Optional[str] = typer.Option(None, "--metric", help="Logged metric to optimise "
                                                                    "(default eval/mean_return)"),
        mode: str = typer.Option("max", "--mode", help="max | min"),
        concurrency: Optional[int] = typer.Option(None, "--concurrency",
                                                  help="Trials at once (default: CPUs / threads per trial)"),
        sweep_dir: Optional[str] = typer.Option(None, "--sweep-dir", help="Default sweeps/<algo>__<env>__<time>"),
        address: Optional[str] = typer.Option(None, "--address", help="An existing Ray cluster (ray start --head)"),
        resume: Optional[str] = typer.Option(None, "--resume", help="Continue the sweep in this directory"),
    ) -> None:
        """Run ALGO over seeds or a hyperparameter search on Ray Tune; one toolkit run per trial."""
        from toolkit_ray.sweep import SweepOptions, run_sweep

        options = SweepOptions(algo=algo, train_argv=list(ctx.args), seeds=seeds, seed_list=seed_list,
                               search=list(search), grid=list(grid), trials=trials, pruner=pruner, metric=metric, mode=mode,
                               concurrency=concurrency, sweep_dir=sweep_dir, address=address)
        code = run_sweep(options, resume=resume)
        if code:
            raise typer.Exit(code)
