"""Benchmark sciml.curvature against PyHessian and curvlinops on a ~1M-parameter MLP (one process, same batch).

Measures (median of ``--repeats`` for the HVP rows, one timed run for the estimators unless ``--repeats`` > 1):
  1. HVP throughput: HessianOperator @ V (k vectors vmapped: reverse-over-reverse (default), forward-over-reverse;
     method="graph": a kept gradient graph, one backward per vector) vs a plain double-backward loop (gradient
     graph built once, then one ``autograd.grad`` per vector: PyHessian's scheme) vs curvlinops.
  2. top-1 eigenvalue: ours (thick-restart Lanczos on method="graph", tol on the relative residual) vs PyHessian
     ``eigenvalues`` (power iteration, tol 1e-3 on the relative change) vs curvlinops + scipy ``eigsh``;
     accuracy of each against a tight reference.
  3. trace with the same number of matvecs: ours (Hutchinson on method="graph"; also on vmapped blocks of
     ``--vectors`` probes) vs PyHessian ``trace`` vs curvlinops.
  4. density: ours (SLQ, m = 100, 1 probe) vs curvlinops ``lanczos_approximate_spectrum`` (PyHessian's
     ``density`` calls the removed ``torch.eig`` and crashes on torch >= 2.0).

Run: ``python benchmarks/bench_curvature.py [--width 1024] [--batch 512] [--repeats 3] [--device cpu|cuda]``.
Timings on a shared machine are indicative; ratios are measured in one process.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
import warnings

import torch
from torch import nn

from sciml.curvature import HessianOperator, hutchinson_trace, spectral_density, top_eigenvalues


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats: int = 1):
    times, out = [], None
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: kB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vectors", type=int, default=10, help="vectors per HVP block")
    parser.add_argument("--matvecs", type=int, default=100, help="trace / density budget")
    parser.add_argument("--eig-tol", type=float, default=1e-2,
                        help="our Lanczos tolerance on ||Hy - theta y|| / ||H|| (eigenvalue error ~ its square)")
    parser.add_argument("--ref-restarts", type=int, default=8, help="Lanczos restarts of the reference top-1")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch.manual_seed(0)
    from sklearn.datasets import load_digits
    digits = load_digits()
    X = torch.tensor(digits.data[:args.batch] / 16.0, dtype=dtype, device=device)
    y = torch.tensor(digits.target[:args.batch], device=device)
    model = nn.Sequential(nn.Linear(64, args.width), nn.Tanh(), nn.Linear(args.width, args.width), nn.Tanh(),
                          nn.Linear(args.width, 10)).to(device, dtype)
    loss_fn = nn.CrossEntropyLoss()
    params = [p for p in model.parameters()]
    P = sum(p.numel() for p in params)
    rows: dict[str, dict] = {}
    print(f"# model 64-{args.width}-{args.width}-10 tanh, P = {P:,}, batch {args.batch}, {args.dtype}, {device}; "
          f"torch {torch.__version__}, {platform.processor() or platform.machine()}, threads "
          f"{torch.get_num_threads()}")

    op = HessianOperator(model, loss_fn, (X, y), chunk_size=args.vectors)  # vmapped blocks of <= vectors columns
    op_graph = HessianOperator(model, loss_fn, (X, y), method="graph")  # PyHessian-style kept gradient graph
    gen = torch.Generator(device=device).manual_seed(0)
    V = torch.randn(P, args.vectors, generator=gen, dtype=dtype, device=device)

    # ---- 1. HVP throughput: every method warmed up once, then timed interleaved (order alternates per repeat) -----
    def double_backward():
        loss = loss_fn(model(X), y)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        cols = []
        for i in range(V.shape[1]):
            parts = torch.split(V[:, i], [p.numel() for p in params])
            hv = torch.autograd.grad(grads, params, [c.reshape(p.shape) for c, p in zip(parts, params)],
                                     retain_graph=True)
            cols.append(torch.cat([h.reshape(-1) for h in hv]))
        return torch.stack(cols, 1)
    op_forward = HessianOperator(model, loss_fn, (X, y), method="forward")
    methods = {"ours_reverse": lambda: op @ V, "ours_forward": lambda: op_forward @ V,
               "ours_graph": lambda: op_graph @ V, "double_backward": double_backward}
    try:
        import curvlinops
        peer_op = curvlinops.HessianLinearOperator(model, loss_fn, params, [(X, y)], check_deterministic=False)
        methods["curvlinops"] = lambda: peer_op @ V
    except ImportError:
        peer_op = None
    results = {name: fn() for name, fn in methods.items()}  # warm-up (first-call and allocator costs)
    times: dict[str, list[float]] = {name: [] for name in methods}
    for r in range(args.repeats):
        for name in (list(methods) if r % 2 == 0 else list(reversed(methods))):
            times[name].append(timed(methods[name], device)[0])
    per_vec = {name: statistics.median(t) / args.vectors for name, t in times.items()}
    ref_hv = results["double_backward"]
    rows["hvp"] = {f"{name}_s_per_vec": value for name, value in per_vec.items()}
    rows["hvp"].update({f"speedup_{name}_vs_double_backward": per_vec["double_backward"] / per_vec[name]
                        for name in per_vec if name.startswith("ours")})
    rows["hvp"]["max_rel_diff"] = max(float((r - ref_hv).norm() / ref_hv.norm()) for r in results.values())
    print("hvp", json.dumps(rows["hvp"]))

    # ---- 2. top-1 eigenvalue -----------------------------------------------------------------------------------
    # reference: residual <= 1e-4 ||H|| bounds the eigenvalue error by ~1e-8 ||H||^2 / gap (float32 HVPs floor
    # the reachable residual near 1e-6)
    ref = top_eigenvalues(op_graph, 1, torch.Generator(device=device).manual_seed(1), tol=1e-4,
                          max_restarts=args.ref_restarts)
    lam_ref = float(ref.eigenvalues[0])
    t, res = timed(lambda: top_eigenvalues(op_graph, 1, torch.Generator(device=device).manual_seed(2),
                                           tol=args.eig_tol), device)
    rows["top1"] = {"reference": lam_ref, "reference_matvecs": ref.num_matvecs, "reference_status": ref.status.label,
                    "ours_s": t, "ours_matvecs": res.num_matvecs,
                    "ours_rel_err": abs(float(res.eigenvalues[0]) - lam_ref) / abs(lam_ref)}
    try:
        import pyhessian
        peer = pyhessian.hessian(model, loss_fn, data=(X, y), cuda=device.type == "cuda")
        torch.manual_seed(2)
        t, (vals, _) = timed(lambda: peer.eigenvalues(maxIter=100, tol=1e-3, top_n=1), device)
        rows["top1"].update(pyhessian_s=t, pyhessian_rel_err=abs(vals[0] - lam_ref) / abs(lam_ref),
                            speedup_vs_pyhessian=t / rows["top1"]["ours_s"])
    except ImportError:
        peer = None
    if peer_op is not None:
        from scipy.sparse.linalg import eigsh
        t, (vals, _) = timed(lambda: eigsh(peer_op.to_scipy(), k=1, which="LA", tol=1e-3), device)
        rows["top1"].update(curvlinops_eigsh_s=t, curvlinops_rel_err=abs(float(vals[0]) - lam_ref) / abs(lam_ref),
                            speedup_vs_curvlinops=t / rows["top1"]["ours_s"])
    print("top1", json.dumps(rows["top1"]))

    # ---- 3. trace, same number of matvecs ----------------------------------------------------------------------
    m = args.matvecs
    t_block, est = timed(lambda: hutchinson_trace(op, m, torch.Generator(device=device).manual_seed(3)), device)
    t, est = timed(lambda: hutchinson_trace(op_graph, m, torch.Generator(device=device).manual_seed(3)), device)
    rows["trace"] = {"matvecs": m, "ours_s": t, "ours_vmapped_blocks_s": t_block, "ours": est.mean,
                     "ours_stderr": est.stderr}
    if peer is not None:
        t, samples = timed(lambda: peer.trace(maxIter=m, tol=float("-inf")), device)
        rows["trace"].update(pyhessian_s=t, pyhessian=sum(samples) / len(samples),
                             speedup_vs_pyhessian=t / rows["trace"]["ours_s"])
    if peer_op is not None:
        t, tr = timed(lambda: curvlinops.hutchinson_trace(peer_op, m), device)
        rows["trace"].update(curvlinops_s=t, curvlinops=float(tr), speedup_vs_curvlinops=t / rows["trace"]["ours_s"])
    print("trace", json.dumps(rows["trace"]))

    # ---- 4. density ---------------------------------------------------------------------------------------------
    t, dens = timed(lambda: spectral_density(op_graph, m, 1, torch.Generator(device=device).manual_seed(4)), device)
    rows["density"] = {"steps": m, "ours_s": t, "ours_max_node": float(dens.nodes.max()),
                       "pyhessian": "crashes: torch.eig removed (PyPI 0.1)"}
    if peer_op is not None:
        t, _ = timed(lambda: curvlinops.lanczos_approximate_spectrum(peer_op, ncv=m), device)
        rows["density"].update(curvlinops_s=t, speedup_vs_curvlinops=t / rows["density"]["ours_s"])
    rows["memory"] = {"peak_mb": peak_memory_mb(device), "kind": "cuda max allocated" if device.type == "cuda"
                      else "process peak RSS (all rows)"}
    print("density", json.dumps(rows["density"]))
    print("memory", json.dumps(rows["memory"]))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"P": P, "args": vars(args), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
