"""Which configurations run: the whole grid, a random sample of it, or Optuna's TPE.

The objective of a configuration is the mean of the chosen metric over its in-sample
cells (walk-forward ``is`` windows; every window when there are none), so that
out-of-sample windows stay unseen by the search. Optuna asks for as many trials at a
time as there are workers; a configuration it proposes twice is not run twice.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from engine.experiment.runner import ExperimentRunner
from engine.experiment.spec import Config, Experiment


def random_configs(configs: Sequence[Config], trials: int, seed: int) -> list[Config]:
    """``trials`` distinct configurations drawn from the grid (all when it is smaller),
    in grid order."""
    if trials >= len(configs):
        return list(configs)
    chosen = set(random.Random(seed).sample(range(len(configs)), trials))
    return [c for i, c in enumerate(configs) if i in chosen]


def objective_value(rows: Sequence[Mapping[str, Any]], metric: str) -> float:
    """Mean of ``metric`` over the in-sample rows (all rows when none is in-sample);
    NaN when no row has a finite value."""
    sample = [r for r in rows if r.get("role") == "is"] or list(rows)
    values = [r.get(metric) for r in sample]
    finite = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def run_search(runner: ExperimentRunner, trials: int | None = None) -> list[Config]:
    """Run the experiment's search; the configurations that ran."""
    exp = runner.experiment
    search = exp.search
    configs = exp.configs()
    n = trials if trials is not None else search.trials
    if search.method == "grid" and not n:
        runner.run_configs(configs)
        return configs
    if search.method == "random" or (search.method == "grid" and n):
        chosen = random_configs(configs, n, search.seed)
        runner.run_configs(chosen)
        return chosen
    return _optuna(runner, exp, configs, n)


def _family(label: str, brain: str, model: str | None) -> str:
    return f"{label}@{brain}" + (f":{model}" if model else "")


def _optuna(
    runner: ExperimentRunner, exp: Experiment, configs: Sequence[Config], trials: int
) -> list[Config]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    families: dict[str, list[Config]] = {}
    for c in configs:
        families.setdefault(_family(c.label, c.brain, c.model), []).append(c)
    by_key = {(_family(c.label, c.brain, c.model), c.params): c for c in configs}
    grids = {
        _family(entry.label, brain, model): entry.grid
        for entry in exp.personas
        for brain, model in entry.brains
    }
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=exp.search.seed)
    )
    ran: dict[str, Config] = {}
    done = 0
    while done < trials:
        batch = []
        for _ in range(min(runner.workers, trials - done)):
            trial = study.ask()
            family = trial.suggest_categorical("config", sorted(families))
            params = tuple(
                (key, trial.suggest_categorical(f"{family}:{key}", list(values)))
                for key, values in grids[family]
            )
            batch.append((trial, by_key[(family, params)]))
        rows = runner.run_configs(list({c.id: c for _, c in batch}.values()))
        for trial, config in batch:
            value = objective_value(
                [r for r in rows if r["config"] == config.id], exp.search.objective
            )
            if math.isfinite(value):
                study.tell(trial, value)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            ran[config.id] = config
        done += len(batch)
    return list(ran.values())
