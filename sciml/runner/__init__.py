"""sciml.runner: experiment and reproduction registries, run folders, result.json. Imports only sciml.core."""

from sciml.runner.context import RunContext
from sciml.runner.discover import discover
from sciml.runner.experiment import EXPERIMENTS, ExperimentConfig, experiment
from sciml.runner.reproduction import REPRODUCTIONS, Measured, Paper, Row, reproduction
from sciml.runner.run import RunOutcome, run_experiment, run_reproduction

__all__ = ["EXPERIMENTS", "ExperimentConfig", "Measured", "Paper", "REPRODUCTIONS", "Row", "RunContext",
           "RunOutcome", "discover", "experiment", "reproduction", "run_experiment", "run_reproduction"]
