"""Concatenated matrix SVD (Shamrai, arXiv 2601.11626): certified error bounds, the incremental estimator and
error-constrained clustering. The paper's tables (MIMO, SAR, PDEBench, SmolVLM) could not be retrieved and their
data are not offline: those rows are paper-only. What runs: the spec's synthetic union-of-subspaces settings
(§3.5, numbers recomputed by the spec's prototype) with the oracle partition, k-means and random partitions as
baselines, and the bound-tightness study on random instances against exact SVDs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from sciml.runner import Measured, Paper, ReproductionConfig, Row, RunContext, reproduction
from sciml.tensor.concat_svd import (IncrementalSVDEstimator, baseline_partition, cluster_metrics,
                                     concat_svd_cluster, residual_bound, true_error, union_of_subspaces_blocks,
                                     weyl_bound)

PAPER = Paper(key="concat_svd", title="Concatenated Matrix SVD: compression bounds, incremental approximation and "
              "error-constrained clustering", arxiv="2601.11626")
_S1 = "C = 6 subspaces, K = 300 blocks 64x8, d = 8, r = 8, noise 0.01, eps = 0.05"
_S2 = "C = 10, K = 400, noise 0.05, eps = 0.10"
_OURS = "numpy default_rng(1) in the spec prototype's draw order: the same realisation as the spec's table"
_TIGHT = "random instances: m in [20, 60), 2-29 blocks of 2-7 columns, r in [7, 12), half in a shared 6-dim subspace"

ROWS = (
    Row("paper/tables", "paper tables (not retrieved)", "MIMO, BigEarthNet-S1, PDEBench, SmolVLM2",
        "reconstruction error / compression ratio / time", None, "-", note="data not offline; copy from the PDF"),
    Row("s1/approximate/max_true_error", "spec §3.5 acceptance", _S1, "max exact error over clusters", 0.0498,
        _OURS, expect=(0.0, 0.05), note="hard constraint: <= eps"),
    Row("s1/approximate/compression_ratio", "spec §3.5 [recomputed]", _S1, "compression ratio", 6.90, _OURS,
        expect=(6.90 * 0.95, 6.90 * 1.05), note="acceptance: within 5%"),
    Row("s1/approximate/n_clusters", "spec §3.5 [recomputed]", _S1, "clusters (oracle: 6)", 6, _OURS,
        expect=(6, 6), note="same realisation as the spec's prototype"),
    Row("s1/approximate/purity", "spec §3.5 (claim: recovers the oracle partition)", _S1, "share of blocks in a "
        "cluster whose majority label is theirs", None, _OURS, note="correction to the spec: on its own realisation "
        "2 low-energy blocks of another subspace are admitted within eps (max error 0.0498 vs the oracle's 0.021 "
        "betrays it); 6 clusters, but not the planted partition. Purity 1 needs eps below the admission threshold"),
    Row("s1/approximate/purity_eps_0.03", "spec §3.5 (oracle recovery, eps under the alien-admission threshold)",
        "as s1 with eps = 0.03 (oracle error 0.021 < eps)", "share of blocks in a cluster whose majority label is "
        "theirs", 1.0, _OURS, expect=(1.0, 1.0), note="no cluster mixes subspaces; clusters may split"),
    Row("s1/max_norm/compression_ratio", "spec §3.5 [recomputed]", _S1, "compression ratio (bounds discount "
        "in-span energy: all singletons)", 1.00, _OURS, expect=(0.99, 1.01)),
    Row("s1/residuals/compression_ratio", "spec §3.5 [recomputed]", _S1, "compression ratio", 1.00, _OURS,
        expect=(0.99, 1.01)),
    Row("s1/kmeans/max_true_error", "spec §3.5 [recomputed]", _S1, "k-means (k = 6) max exact error", 0.766, _OURS,
        note="baseline: violates eps"),
    Row("s1/random/max_true_error", "baseline", _S1, "random partition into 6: max exact error", None, _OURS,
        note="trivial baseline"),
    Row("s1/oracle/max_true_error", "spec §3.5 [recomputed]", _S1, "oracle labels: max exact error", 0.021, _OURS),
    Row("s2/approximate/max_true_error", "spec §3.5 acceptance", _S2, "max exact error", 0.0999, _OURS,
        expect=(0.0, 0.10)),
    Row("s2/approximate/compression_ratio", "spec §3.5 [recomputed]", _S2, "compression ratio", 3.34, _OURS,
        expect=(3.34 * 0.95, 3.34 * 1.05)),
    Row("s2/oracle/max_true_error", "spec §3.5 [recomputed]", _S2, "oracle labels: max exact error", 0.109, _OURS,
        note="the oracle violates eps here"),
    Row("tightness/violations", "spec §3.2 (claim: never below the true error)", _TIGHT,
        "estimates below the exact error (Weyl, residual, incremental)", 0, _TIGHT, expect=(0, 0)),
    Row("tightness/incremental_minus_true", "spec §3.3 [recomputed]", _TIGHT, "mean incremental estimate - true "
        "error", None, _TIGHT, note="spec: +0.001 (structured) / +0.008 (unstructured)"),
    Row("tightness/weyl_minus_true", "spec §3.3 [recomputed]", _TIGHT, "mean Weyl bound - true error", None, _TIGHT,
        note="spec: +0.56 / +0.20"),
)


@dataclasses.dataclass(frozen=True)
class ConcatSVDReproConfig(ReproductionConfig):
    instances: int = 300

    @classmethod
    def preset(cls, scale: str) -> "ConcatSVDReproConfig":
        return cls(scale=scale, instances=30) if scale == "smoke" else cls(scale=scale)


def _purity(clusters, labels: torch.Tensor) -> float:
    good = 0
    for members in clusters:
        lab = labels[members]
        good += int((lab == torch.mode(lab).values).sum())
    return good / len(labels)


@reproduction(PAPER, rows=ROWS, config=ConcatSVDReproConfig,
              summary="certified bounds, incremental estimator and eps-constrained clustering on union-of-subspaces")
def reproduce(cfg: ConcatSVDReproConfig, ctx: RunContext) -> dict[str, Measured]:
    out: dict[str, Measured] = {}
    blocks, labels = union_of_subspaces_blocks(6, 300, noise=0.01, seed=1)
    for method in ("approximate", "max_norm", "residuals"):
        res = concat_svd_cluster(blocks, 8, 0.05, method=method)
        ctx.log(f"S1 {method}: {len(res.clusters)} clusters, max err {res.max_true_error:.4f}, CR "
                f"{res.compression_ratio:.3f}, {res.seconds:.2f} s")
        out[f"s1/{method}/compression_ratio"] = Measured(res.compression_ratio)
        if method == "approximate":
            out["s1/approximate/max_true_error"] = Measured(res.max_true_error)
            out["s1/approximate/n_clusters"] = Measured(len(res.clusters))
            out["s1/approximate/purity"] = Measured(_purity(res.clusters, labels))
    strict = concat_svd_cluster(blocks, 8, 0.03, method="approximate")
    out["s1/approximate/purity_eps_0.03"] = Measured(_purity(strict.clusters, labels),
                                                      f"{len(strict.clusters)} clusters")
    out["s1/kmeans/max_true_error"] = Measured(cluster_metrics(blocks, baseline_partition(blocks, 6, "kmeans"),
                                                               8).max_true_error)
    out["s1/random/max_true_error"] = Measured(cluster_metrics(blocks, baseline_partition(blocks, 6, "random"),
                                                               8).max_true_error)
    oracle = [torch.nonzero(labels == c).flatten().tolist() for c in range(6)]
    out["s1/oracle/max_true_error"] = Measured(cluster_metrics(blocks, oracle, 8).max_true_error)
    blocks2, labels2 = union_of_subspaces_blocks(10, 400, noise=0.05, seed=1)
    res2 = concat_svd_cluster(blocks2, 8, 0.10)
    out["s2/approximate/max_true_error"] = Measured(res2.max_true_error, f"{len(res2.clusters)} clusters")
    out["s2/approximate/compression_ratio"] = Measured(res2.compression_ratio)
    oracle2 = [torch.nonzero(labels2 == c).flatten().tolist() for c in range(10)]
    out["s2/oracle/max_true_error"] = Measured(cluster_metrics(blocks2, oracle2, 8).max_true_error)
    g = np.random.default_rng(0)
    violations, d_inc, d_weyl = 0, [], []
    for _ in range(cfg.instances):
        m, r, K = int(g.integers(20, 60)), int(g.integers(7, 12)), int(g.integers(2, 30))
        basis = np.linalg.qr(g.standard_normal((m, 6)))[0]
        structured = bool(g.integers(0, 2))
        B = []
        for _ in range(K):
            n = int(g.integers(2, 8))
            A = basis @ g.standard_normal((6, n)) + 0.05 * g.standard_normal((m, n)) if structured \
                else g.standard_normal((m, n))
            B.append(torch.from_numpy(A))
        exact = true_error(B, r)
        est = IncrementalSVDEstimator(r)
        for A in B:
            est.append(A)
        weyl = weyl_bound(B, r)
        violations += sum(v < exact - 1e-9 for v in (weyl, residual_bound(B, r), est.error))
        d_inc.append(est.error - exact)
        d_weyl.append(weyl - exact)
    out["tightness/violations"] = Measured(violations, f"{cfg.instances} instances",
                                           paper_setting=cfg.instances >= 300)
    out["tightness/incremental_minus_true"] = Measured(float(np.mean(d_inc)))
    out["tightness/weyl_minus_true"] = Measured(float(np.mean(d_weyl)))
    return out
