"""sciml.runner: experiment and reproduction registries, run folders, result.json. Imports only sciml.core."""

from sciml.runner.context import RunContext
from sciml.runner.discover import discover
from sciml.runner.experiment import EXPERIMENTS, ExperimentConfig, experiment
from sciml.runner.reproduction import REPRODUCTIONS, Measured, Paper, ReproductionConfig, Row, reproduction
from sciml.runner.run import RunInterrupted, RunOutcome, rerun, run_experiment, run_reproduction

__all__ = ["EXPERIMENTS", "ExperimentConfig", "Measured", "Paper", "REPRODUCTIONS", "ReproductionConfig", "Row",
           "RunContext", "RunInterrupted", "RunOutcome", "discover", "experiment", "reproduction", "rerun",
           "run_experiment", "run_reproduction"]
