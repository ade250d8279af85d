"""sciml: scientific machine learning and tensor methods on one structured linear-algebra core.

Importing sciml is light: it loads no domain module and never qiskit or gpytorch.
"""

__version__ = "0.1.0"
