"""Chebyshev-Tucker vs grid-based Tucker (HOSVD: sciml; Tucker-ALS: tensorly) for a smooth 3-D kernel.

Grid route: sample f on the n^3 cell-centred grid, then a tolerance HOSVD (and tensorly's HOOI at the same ranks).
CT route: sample f at m^3 Chebyshev nodes (m chosen adaptively), DCT, HOSVD of the coefficient tensor, then write
the Tucker factors on the same n-point grids (``to_grid``; the n^3 array is never formed). Same tolerance, and
both errors are measured on the n^3 grid against the exact samples, so the comparison is at equal accuracy.
Also: CT evaluation throughput at 10^6 random points, and in 4-8 D the TT-cross format against the Tucker callable
route and tensorly's TT-SVD of the full value grid (``--only-beyond`` runs just that part).

    python benchmarks/bench_chebyshev_tucker.py [--quick]

Speed is a ratio within one process; the machine may be shared (see the printed load average).
"""

from __future__ import annotations

import argparse
import os
import platform

import torch

from sciml.core.profiling import measure
from sciml.linalg import tucker_hosvd
from sciml.tensor import ChebyshevTucker, newton_long
from sciml.tensor.ct_spline import cell_centres

SIGMA = 0.3
TOL = 1e-8
BOX = [(-1.0, 1.0)] * 3


def f(x: torch.Tensor) -> torch.Tensor:
    return newton_long(x, SIGMA)  # the smooth long-range Newton piece erf(r/s)/r


def grid_samples(n: int) -> torch.Tensor:
    x = cell_centres(n, (-1.0, 1.0))
    pts = torch.stack(torch.meshgrid(x, x, x, indexing="ij"), dim=-1).reshape(-1, 3)
    return torch.cat([f(chunk) for chunk in pts.split(2**20)]).reshape(n, n, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 64, 128 only and 10^5 evaluation points")
    parser.add_argument("--only-beyond", action="store_true", help="only the 4-8 D TT-cross comparison")
    args = parser.parse_args()
    if args.only_beyond:
        beyond_the_box(quick=args.quick)
        return
    sizes = (64, 128) if args.quick else (64, 128, 256)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}")
    print(f"f = erf(r/{SIGMA})/r on [-1,1]^3, tol {TOL:g}")
    header = (f"{'n':>5} {'grid s':>8} {'grid MB':>8} {'grid rank':>9} {'grid err':>9} {'ALS s':>7} {'ALS err':>9} "
              f"{'CT s':>7} {'CT MB':>7} {'CT rank':>7} {'CT err':>9} {'time x':>7} {'mem x':>7}")
    print(header)
    ct_fit = None
    for n in sizes:
        def grid_route(n=n):
            full = grid_samples(n)
            return full, tucker_hosvd(full, tol=TOL, method="svd")

        grid = measure(grid_route, repeat=1)
        full, hosvd = grid.value
        x = cell_centres(n, (-1.0, 1.0))

        def ct_route(x=x):
            ct = ChebyshevTucker.fit(f, BOX, tol=TOL)
            return ct, ct.to_grid([x, x, x])

        ct_m = measure(ct_route, repeat=3)  # cheap: best of 3 (the grid route runs once)
        ct_fit, tucker = ct_m.value
        norm = torch.linalg.vector_norm(full)
        ct_err = float(torch.linalg.vector_norm(tucker.to_tensor() - full) / norm)
        als_s, als_err = float("nan"), float("nan")
        try:
            import tensorly as tl
            from tensorly.decomposition import tucker as tl_tucker

            full_np = full.numpy()
            ranks = list(hosvd.ranks)
            als = measure(lambda a=full_np, r=ranks: tl_tucker(a, rank=r, init="svd", n_iter_max=10, tol=1e-10),
                          repeat=1)
            als_s = als.seconds
            rec = tl.tucker_to_tensor(als.value)
            als_err = float(((rec - full_np) ** 2).sum() ** 0.5 / (full_np**2).sum() ** 0.5)
        except ImportError:
            pass
        print(f"{n:>5} {grid.seconds:>8.2f} {grid.peak_bytes / 2**20:>8.1f} {max(hosvd.ranks):>9} "
              f"{hosvd.rel_error:>9.1e} {als_s:>7.2f} {als_err:>9.1e} {ct_m.seconds:>7.2f} "
              f"{ct_m.peak_bytes / 2**20:>7.1f} {max(ct_fit.ranks):>7} {ct_err:>9.1e} "
              f"{grid.seconds / ct_m.seconds:>7.1f} {grid.peak_bytes / max(ct_m.peak_bytes, 1):>7.1f}")
        del full, hosvd
    n_pts = 10**5 if args.quick else 10**6
    pts = 2 * torch.rand(n_pts, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) - 1
    ev = measure(lambda: ct_fit.evaluate(pts), repeat=3)
    direct = measure(lambda: f(pts), repeat=3)
    err = float((ev.value - direct.value).abs().max() / direct.value.abs().max())
    print(f"CT evaluate: {n_pts} points in {ev.seconds:.3f} s = {n_pts / ev.seconds / 1e6:.2f} M points/s "
          f"(ranks {ct_fit.ranks}, degrees {ct_fit.degrees}); closed-form f: {direct.seconds:.3f} s; "
          f"rel. max error {err:.1e}")

    beyond_the_box(quick=args.quick)


def _rational(x: torch.Tensor) -> torch.Tensor:
    return 1.0 / (1.0 + 0.25 * (x**2).sum(-1))


def beyond_the_box(quick: bool = False) -> None:
    """4-8 D: ChebyshevTT (TT-cross) vs the Chebyshev-Tucker callable route (full m^d sampling) vs tensorly's TT-SVD
    of the full grid of values at the same Chebyshev nodes (peer; m^d samples), all checked at 20k random points."""
    print("\nBeyond the box: f = 1/(1 + |x|^2/4) on [-1,1]^d, tol 1e-9, error = rel. max at 20k random points")
    print(f"{'d':>3} {'TT s':>7} {'TT err':>9} {'evals':>9} {'Tucker s':>9} {'Tucker err':>10} {'Tucker/TT':>9} "
          f"{'tensorly TT-SVD s':>17} {'tl err':>9}")
    from sciml.tensor import ChebyshevTT

    for d in ((4, 5) if quick else (4, 5, 6, 8)):
        box = [(-1.0, 1.0)] * d
        pts = 2 * torch.rand(20000, d, generator=torch.Generator().manual_seed(d), dtype=torch.float64) - 1
        truth = _rational(pts)
        tt = measure(lambda b=box: ChebyshevTT.fit(_rational, b, tol=1e-9), repeat=3)
        tt_err = float((tt.value(pts) - truth).abs().max() / truth.abs().max())
        tk_s, tk_err, tl_s, tl_err = (float("nan"),) * 4
        if d <= 5:
            tk = measure(lambda b=box: ChebyshevTucker.fit(_rational, b, tol=1e-9, max_degree=64,
                                                           on_failure="ignore"), repeat=1)
            tk_s = tk.seconds
            tk_err = float((tk.value(pts) - truth).abs().max() / truth.abs().max())
            try:
                import tensorly as tl
                from tensorly.decomposition import tensor_train

                from sciml.tensor.ct_build import node_grid, sample

                degrees = tt.value.degrees

                def tl_route(b=box, degs=degrees):
                    vals = sample(_rational, node_grid([g + 1 for g in degs], b, torch.float64, None))
                    fac = tensor_train(vals.numpy(), rank=[1] + [max(tt.value.ranks)] * (d - 1) + [1])
                    return ChebyshevTT.from_tensorly(
                        tl.tt_tensor.TTTensor([torch.as_tensor(c) for c in fac]), b)

                peer = measure(tl_route, repeat=1)
                # TT of values -> coefficients along each core's physical index (exact linear map).
                from sciml.linalg import chebyshev_coefficients

                cores = tuple(chebyshev_coefficients(c, dims=1) for c in peer.value.cores)
                tl_s = peer.seconds
                peer_fit = ChebyshevTT(cores, peer.value.domain, 1e-9, 0.0, 0, peer.value.status)
                tl_err = float((peer_fit(pts) - truth).abs().max() / truth.abs().max())
            except ImportError:
                pass
        print(f"{d:>3} {tt.seconds:>7.2f} {tt_err:>9.1e} {tt.value.n_evals:>9} {tk_s:>9.2f} {tk_err:>10.1e} "
              f"{tk_s / tt.seconds:>9.1f} {tl_s:>17.2f} {tl_err:>9.1e}")


if __name__ == "__main__":
    main()
