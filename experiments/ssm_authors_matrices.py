"""Compare the package's shipped PTD perturbations with the authors' precomputed matrices (AnnanYu/Approximate_Diagonal).

The authors' repository has no licence file, so their ``.mat`` files are not shipped here; point ``authors_dir`` at a
local checkout (``git clone https://github.com/AnnanYu/Approximate_Diagonal``, files ``S5-PTD/ptbHiPPO{8,16,32,128_v2}
.mat`` with Lam, V, Vinv of A_H + E, and ``S4-PTD/ptb.mat``, the 64 x 64 complex P with A = A_H - P used by the LRA
S4-PTD kernel). Nothing is downloaded. Per N it reports kappa(V), ||E||_2/||A_H||_2, max Re(lambda) before the
authors' flip (Re := -|Re|), sup|G_PTD - G_H| / sup|G_H| (C = ones/sqrt(N), B = B_H), the same uniform over unit C,
and the DC gain, for the authors' matrix and ours.

Measured (commit ec98d6a of the authors' repo, this package's two-stage defaults): see the s4_ptd reproduction rows
``thm3/N*/rel_dev_ptd`` (paper column = the authors' value).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from sciml.runner import ExperimentConfig, RunContext, experiment
from sciml.ssm import hippo_legs, ptd
from sciml.ssm.ptd import transfer_deviation

FILES = {8: "S5-PTD/ptbHiPPO8.mat", 16: "S5-PTD/ptbHiPPO16.mat", 32: "S5-PTD/ptbHiPPO32.mat",
         64: "S4-PTD/ptb.mat", 128: "S5-PTD/ptbHiPPO128_v2.mat"}


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    authors_dir: str = ""           # local checkout of AnnanYu/Approximate_Diagonal ("" = compare ours only)

    def validate(self) -> None:
        if self.authors_dir and not Path(self.authors_dir).is_dir():
            raise ValueError(f"authors_dir {self.authors_dir!r} is not a directory")


def load_authors(path: Path, N: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """(eigenvalues (flipped to Re <= 0 as the authors do), V, V^{-1}, max Re before the flip) of A_H + E."""
    from scipy.io import loadmat

    d = loadmat(path)
    if "ptb" in d:                                         # S4-PTD: A = A_H - P (their code negates A_H)
        A, _ = hippo_legs(N)
        lam, V = torch.linalg.eig(A.to(torch.complex128) - torch.from_numpy(d["ptb"]).to(torch.complex128))
        Vinv = torch.linalg.inv(V)
    else:
        lam = torch.from_numpy(d["Lam"]).to(torch.complex128)
        lam = torch.diagonal(lam) if lam.shape[1] > 1 else lam[:, 0]
        V = torch.from_numpy(d["V"]).to(torch.complex128)
        Vinv = torch.from_numpy(d["Vinv"]).to(torch.complex128)
    max_re = float(lam.real.max())
    return torch.complex(-lam.real.abs(), lam.imag), V, Vinv, max_re


@experiment("ssm/authors-matrices", config=Config, tags=("ssm",),
            summary="PTD fidelity (transfer-function deviation, DC gain, kappa) of our shipped E vs the authors' .mat")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    metrics: dict[str, float] = {}
    sizes = (8, 32) if cfg.smoke else tuple(FILES)
    for N in sizes:
        A, B = hippo_legs(N)
        ours = ptd(A)
        metrics.update({f"N{N}_ours_rel_dev": ours.transfer_deviation, f"N{N}_ours_uniform_dev":
                        ours.uniform_transfer_deviation, f"N{N}_ours_kappa": ours.condition_number,
                        f"N{N}_ours_rel_E": ours.relative_perturbation,
                        f"N{N}_ours_dc_ratio": ours.dc_gain / ours.dc_gain_reference})
        line = (f"N={N}: ours dev {ours.transfer_deviation:.3f} (uniform {ours.uniform_transfer_deviation:.3f}), "
                f"kappa {ours.condition_number:.2f}, ||E||/||A|| {ours.relative_perturbation:.3f}")
        path = Path(cfg.authors_dir) / FILES[N] if cfg.authors_dir else None
        if path is not None and path.exists():
            lam, V, Vinv, max_re = load_authors(path, N)
            E = V @ torch.diag(lam) @ Vinv - A                  # of the flipped system actually used
            tf = transfer_deviation(A, lam, V, Vinv, B)
            metrics.update({f"N{N}_authors_rel_dev": tf["relative"], f"N{N}_authors_uniform_dev": tf["uniform"],
                            f"N{N}_authors_kappa": float(torch.linalg.cond(V)), f"N{N}_authors_max_re": max_re,
                            f"N{N}_authors_rel_E": float(torch.linalg.matrix_norm(E, 2) / torch.linalg.matrix_norm(A, 2)),
                            f"N{N}_authors_dc_ratio": tf["dc_gain"] / tf["dc_gain_reference"]})
            line += (f" | authors dev {tf['relative']:.3f} (uniform {tf['uniform']:.3f}), kappa "
                     f"{metrics[f'N{N}_authors_kappa']:.2f}, max Re before flip {max_re:+.2f}")
        ctx.log(line)
    metrics["authors_available"] = float(bool(cfg.authors_dir))
    return {k: (v if math.isfinite(v) else float("nan")) for k, v in metrics.items()}
