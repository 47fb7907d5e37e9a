"""Experiments: grids of ordinary backtests over windows, run locally or on a Dask cluster.

``spec`` reads the experiment file and expands it into cells, ``windows`` lays fixed,
rolling or walk-forward windows over the data, ``cells`` runs one cell, ``executors``
places cells on processes or a cluster, ``runner`` drives a run into ``store`` (the
results table, resumable), ``search`` chooses configurations (grid, random, Optuna) and
``stats`` states what the results say.
"""

from engine.experiment.spec import (
    Cell,
    Config,
    Experiment,
    ExperimentError,
    experiment_from_dict,
    load_experiment,
)

__all__ = [
    "Cell",
    "Config",
    "Experiment",
    "ExperimentError",
    "experiment_from_dict",
    "load_experiment",
]
