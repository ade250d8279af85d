"""Block coordinate descent (spec optim_numerics section 4): optima against scipy, monotonicity, the 4.5 ordering."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml.core import Status
from sciml.core import ConvergenceWarning
from sciml.numerics.bcd import (ForestGaBP, LeastSquares, Logistic, NonNegL1LeastSquares, Quadratic, Softmax, bcd,
                                dataset_a, dataset_b, dataset_c, dataset_d, dataset_e, forest_partition, gabp_solve,
                                make_partition, red_black_partition)

scipy = pytest.importorskip("scipy")
from scipy import optimize, sparse  # noqa: E402
from scipy.sparse.linalg import spsolve  # noqa: E402


def _dense_problem(m=80, n=40, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n)) * rng.uniform(0.2, 5.0, n)      # unequal column scales: L_i differ
    b = rng.standard_normal(m)
    return A, b


def test_gsq_matrix_updates_reach_lstsq_optimum():
    A, b = _dense_problem()
    x_star = np.linalg.lstsq(A, b, rcond=None)[0]
    res = bcd(LeastSquares(A, b), rule="gsq", partition="sort", block_size=5, update="hb", max_iter=5000,
              tol=1e-13)
    assert res.status is Status.CONVERGED
    x = res.x.numpy()
    assert np.linalg.norm(x - x_star) <= 1e-8 * np.linalg.norm(x_star)
    f_star = 0.5 * np.sum((A @ x_star - b) ** 2)
    assert abs(res.history[-1].item() - f_star) <= 1e-8 * f_star
    assert res.history[0].item() == pytest.approx(0.5 * np.sum(b ** 2), rel=1e-12)    # f(x0 = 0) first


def test_variable_gsq_reaches_consistent_optimum_on_dataset_a_small():
    # p > n: f* = 0 (spec 4.5); GSQ (IHT) with matrix updates drives f to ~1e-13 f(0) in 400 steps.
    A, b, _ = dataset_a(100, 400, seed=1)
    res = bcd(LeastSquares(A, b), rule="gsq", partition="variable", block_size=5, update="hb", max_iter=400,
              on_failure="ignore")
    assert res.history[-1] <= 1e-8 * res.history[0]


@pytest.mark.parametrize("update", ["lb", "hb", "la", "ls"])
@pytest.mark.parametrize("rule", ["random", "gsl", "gsq"])
def test_f_never_increases(update, rule):
    A, b = _dense_problem(60, 30, seed=1)
    y = np.where(b > 0, 1.0, -1.0)
    for problem in (LeastSquares(A, b), Logistic(A, y), NonNegL1LeastSquares(A, b, 5.0)):
        res = bcd(problem, rule=rule, partition="sort", block_size=4, update=update, max_iter=150,
                  generator=torch.Generator().manual_seed(3), on_failure="ignore")
        h = res.history
        assert bool((h[1:] <= h[:-1] + 1e-12 * h[:-1].abs()).all()), f"{type(problem).__name__} increased"
        assert res.selected_blocks.shape == (res.iterations, 4)


def _spec_runs(problem) -> dict[str, float]:
    """f after 500 iterations (block 5, x0 = 0) for the spec 4.5 comparisons; GSQ with matrix updates."""
    def final(rule, partition="sort", update="lb"):
        return bcd(problem, rule=rule, partition=partition, block_size=5, update=update, max_iter=500,
                   generator=torch.Generator().manual_seed(0), on_failure="ignore").history[-1].item()

    f = {"random": final("random"), "gs": final("gs"), "gsl": final("gsl"), "gsq": final("gsq", update="hb"),
         "gsl_order": final("gsl", "order")}
    assert f["gsq"] < f["gsl"] < f["gs"] < f["random"]
    assert f["gsl"] < f["gsl_order"]
    return f


def test_rule_ordering_on_dataset_a_300x1500():
    """Spec 4.5 (300 x 1500, block 5, 500 iterations, 1/L_b; GSQ with matrix updates): GSQ < GSL < GS < Random and
    GSL(sort) < GSL(order). Our generator reproduces the spec's numbers (GS 7.5e2, GSL 2.2, GSQ 2.3e-2): band x2."""
    A, b, _ = dataset_a(300, 1500, seed=1)
    f = _spec_runs(LeastSquares(A, b))
    for key, spec in (("gs", 7.5e2), ("gsl", 2.2), ("gsq", 2.3e-2)):
        assert spec / 2 <= f[key] <= spec * 2, (key, f[key])


@pytest.mark.slow
def test_rule_ordering_on_dataset_a_full_size():
    """Spec 4.5 table, full size 1000 x 10000: the ordering, and f after 500 within x2 of the table."""
    A, b, _ = dataset_a(1000, 10_000, seed=1)
    p = LeastSquares(A, b)
    assert p.f(torch.zeros(10_000)) == pytest.approx(6.248e6, rel=1e-3)
    f = _spec_runs(p)
    for key, spec in (("gs", 1.10e5), ("gsl", 4.73e3), ("gsl_order", 8.15e4)):
        assert spec / 2 <= f[key] <= spec * 2, (key, f[key])


def test_quadratic_exact_block_solves_match_spsolve():
    side = 15
    Q = _lattice(side)
    c = np.random.default_rng(2).standard_normal(side * side)
    x_star = spsolve(Q.tocsc(), c)
    res = bcd(Quadratic(Q, c), rule="gsq", partition="order", block_size=15, update="exact", max_iter=3000,
              tol=1e-12)
    assert res.status is Status.CONVERGED
    assert np.linalg.norm(res.x.numpy() - x_star) <= 1e-9 * np.linalg.norm(x_star)
    f_star = -0.5 * c @ x_star
    assert abs(res.history[-1].item() - f_star) <= 1e-10 * abs(f_star)


def _lattice(side, shift=0.5):
    lap1 = sparse.diags([-np.ones(side - 1), 2 * np.ones(side), -np.ones(side - 1)], [-1, 0, 1])
    return (sparse.kronsum(lap1, lap1) + shift * sparse.eye(side * side)).tocsr()


def test_gabp_on_trees_matches_spsolve_and_rejects_cycles():
    rng = np.random.default_rng(3)
    n = 200
    parents = np.array([rng.integers(0, i) for i in range(1, n)])          # a random tree
    W = sparse.coo_matrix((-rng.uniform(0.1, 1.0, n - 1), (np.arange(1, n), parents)), shape=(n, n))
    W = (W + W.T).tocsr()
    Q = (W + sparse.diags(np.asarray(abs(W).sum(1)).ravel() + 0.1)).tocsr()
    c = rng.standard_normal(n)
    x_star = spsolve(Q.tocsc(), c)
    assert np.linalg.norm(gabp_solve(Q, c).numpy() - x_star) <= 1e-12 * np.linalg.norm(x_star)
    forest = sparse.block_diag([Q, Q]).tocsr()
    assert np.allclose(gabp_solve(forest, np.r_[c, c]).numpy(), np.r_[x_star, x_star], rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="forest"):
        gabp_solve(_lattice(3), np.ones(9))
    # BCD with GaBP block solves: lattice rows (paths) as blocks converge to spsolve; two rows form cycles.
    side = 12
    Q, c = _lattice(side), rng.standard_normal(side * side)
    res = bcd(Quadratic(Q, c), rule="gsq", partition="order", block_size=side, update="gabp", max_iter=3000,
              tol=1e-12)
    x_star = spsolve(Q.tocsc(), c)
    assert np.linalg.norm(res.x.numpy() - x_star) <= 1e-9 * np.linalg.norm(x_star)
    with pytest.raises(ValueError, match="forest"):
        bcd(Quadratic(Q, c), rule="gs", partition="order", block_size=2 * side, update="gabp", max_iter=5)


def test_dataset_d_generator_gives_spec_optimum():
    # Spec 4.3: f* = -1045999575.2270696 (reference code's OPTIMAL_LOSS), here from spsolve on our generator.
    Q, c = dataset_d()
    assert Q.shape == (2400, 2400)
    x_star = spsolve(sparse.csc_matrix(Q.numpy()), c.numpy())
    assert -0.5 * c.numpy() @ x_star == pytest.approx(-1045999575.2270696, rel=1e-12)
    small_Q, small_c = dataset_d(8, 8, n_labelled=6)
    res = bcd(Quadratic(small_Q, small_c), rule="gsq", block_size=8, update="exact", max_iter=4000, tol=1e-11)
    x_small = spsolve(sparse.csc_matrix(small_Q.numpy()), small_c.numpy())
    assert np.linalg.norm(res.x.numpy() - x_small) <= 1e-8 * np.linalg.norm(x_small)


def test_budget_exhaustion_warns():
    A, b = _dense_problem()
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        res = bcd(LeastSquares(A, b), rule="cyclic", max_iter=3)
    assert res.status is Status.MAX_ITER and res.history.shape == (4,)


@pytest.mark.parametrize("update", ["hb", "lb"])
def test_nonneg_l1_matches_nnls(update):
    # 0.5||Ax-b||^2 + lam 1^T x = 0.5||Ax-b'||^2 + const with A^T b' = A^T b - lam 1 (A full column rank).
    A, b = _dense_problem(60, 20, seed=4)
    lam = 3.0
    b_shift = b - lam * A @ np.linalg.solve(A.T @ A, np.ones(20))
    x_star, _ = optimize.nnls(A, b_shift)
    assert 0 < np.count_nonzero(x_star) < 20                        # the constraint is active somewhere
    res = bcd(NonNegL1LeastSquares(A, b, lam), rule="gsq", partition="order", block_size=5, update=update,
              max_iter=3000, tol=1e-11)
    assert res.status is Status.CONVERGED
    if update == "hb":            # spec 4.3: projected Newton (TMP) identifies the active set, then converges fast
        assert res.iterations <= 200
    assert bool((res.x >= 0).all())
    assert np.linalg.norm(res.x.numpy() - x_star) <= 1e-7 * np.linalg.norm(x_star)


def test_logistic_newton_blocks_match_scipy():
    A, b = _dense_problem(100, 10, seed=5)
    y = np.where(A[:, 0] * 0.3 + b > 0, 1.0, -1.0)                  # noisy labels: finite optimum
    fun = lambda w: np.sum(np.logaddexp(0.0, -y * (A @ w)))          # noqa: E731
    jac = lambda w: -A.T @ (y / (1 + np.exp(y * (A @ w))))           # noqa: E731
    ref = optimize.minimize(fun, np.zeros(10), jac=jac, method="BFGS", options={"gtol": 1e-10})
    res = bcd(Logistic(A, y), rule="gsl", partition="order", block_size=5, update="ls", max_iter=2000, tol=1e-10)
    assert res.status is Status.CONVERGED
    assert abs(res.history[-1].item() - ref.fun) <= 1e-9 * ref.fun


@pytest.mark.parametrize("update,rule,partition", [("lb", "gsq", "sort"), ("ls", "gsd", "variable"),
                                                   ("hb", "random", "order")])
def test_softmax_matches_scipy_and_never_increases(update, rule, partition):
    from scipy.special import logsumexp

    rng = np.random.default_rng(7)
    m, d, k = 120, 6, 3
    A, y = rng.standard_normal((m, d)), rng.integers(0, k, m)          # random labels: finite optimum
    Y = np.eye(k)[y]

    def fun(w):
        S = A @ w.reshape(d, k)
        return np.sum(logsumexp(S, 1) - np.sum(S * Y, 1))

    def jac(w):
        S = A @ w.reshape(d, k)
        return (A.T @ (np.exp(S - logsumexp(S, 1)[:, None]) - Y)).ravel()

    ref = optimize.minimize(fun, np.zeros(d * k), jac=jac, method="BFGS", options={"gtol": 1e-10})
    problem = Softmax(A, y)
    w = rng.standard_normal(d * k)
    assert np.allclose(problem.gradient(w).numpy(), jac(w), rtol=1e-12, atol=1e-12)   # row-major (features x k)
    res = bcd(problem, rule=rule, partition=partition, block_size=4, update=update, max_iter=3000, tol=1e-8,
              generator=torch.Generator().manual_seed(0))
    assert res.status is Status.CONVERGED
    assert abs(res.history[-1].item() - ref.fun) <= 1e-10 * ref.fun
    h = res.history
    assert bool((h[1:] <= h[:-1] + 1e-12 * h[:-1].abs()).all())


def test_follows_input_dtype_and_partitions_cover_all():
    A, b = _dense_problem(30, 17, seed=6)
    res = bcd(LeastSquares(torch.tensor(A, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)),
              rule="gs", block_size=4, max_iter=10, on_failure="ignore")
    assert res.x.dtype == torch.float32
    L = torch.tensor(np.random.default_rng(0).uniform(size=17))
    for part in ("order", "sort", "avg"):
        blocks, mask = make_partition(L, 4, part)
        assert sorted(blocks[mask].tolist()) == list(range(17))
    blocks, mask = make_partition(L, 4, "sort")
    Lb = torch.where(mask, L[blocks], torch.nan)
    assert bool((Lb[:-1].nan_to_num(-1).amin(1) >= Lb[1:].nan_to_num(-1).amax(1)).all())   # sorted groups


def test_bad_input_raises():
    A, b = _dense_problem(10, 6)
    p = LeastSquares(A, b)
    for kwargs, words in (({"block_size": 0}, "block_size"), ({"block_size": 7}, "block_size"),
                          ({"rule": "greedy"}, "rule"), ({"update": "newton"}, "update"),
                          ({"partition": "forest"}, "partition"),
                          ({"rule": "gsl", "partition": "variable"}, "GSD")):
        with pytest.raises(ValueError, match=words):
            bcd(p, **kwargs)
    A_nan = A.copy()
    A_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LeastSquares(A_nan, b)
    with pytest.raises(ValueError, match="NaN"):
        Quadratic(np.eye(3), [1.0, np.inf, 0.0])
    with pytest.raises(ValueError, match="exact"):
        bcd(Logistic(A, np.sign(b)), update="exact")
    with pytest.raises(ValueError, match="gabp"):
        bcd(p, update="gabp")
    with pytest.raises(ValueError, match="lam"):
        NonNegL1LeastSquares(A, b, -1.0)


@pytest.mark.parametrize("partition", ["red_black", "tree"])
def test_message_passing_partitions_reach_spsolve_on_lattice(partition):
    """Spec 4.2 / 4.3: red-black (independent sets) and tree (forests) partitions with exact GaBP block solves."""
    Q, c = dataset_d(10, 12, n_labelled=8, weight=1e3)
    groups = (red_black_partition if partition == "red_black" else forest_partition)(Q)
    assert sorted(torch.cat(groups).tolist()) == list(range(Q.shape[0]))          # a partition of the nodes
    for g in groups:
        block = Q[g][:, g]
        if partition == "red_black":                                              # independent set: diagonal
            assert torch.count_nonzero(block - torch.diag(torch.diagonal(block))) == 0
        ForestGaBP(block)                                                         # raises on a cycle
    x_star = spsolve(sparse.csc_matrix(Q.numpy()), c.numpy())
    res = bcd(Quadratic(Q, c), rule="cyclic", partition=partition, update="gabp", max_iter=20_000, tol=1e-12)
    assert res.status is Status.CONVERGED
    assert np.linalg.norm(res.x.numpy() - x_star) <= 1e-8 * np.linalg.norm(x_star)
    h = res.history
    assert bool((h[1:] <= h[:-1] + 1e-12 * h[:-1].abs()).all())                  # exact block solves never increase f


def test_dataset_e_tree_partition_and_red_black_rejects_odd_cycles():
    Q, c = dataset_e(200, n_labelled=20, seed=2)
    assert bool((Q - Q.T == 0).all()) and bool((torch.linalg.eigvalsh(Q) > 0).all())
    with pytest.raises(ValueError, match="bipartite"):                             # k-NN graphs have triangles
        red_black_partition(Q)
    x_star = spsolve(sparse.csc_matrix(Q.numpy()), c.numpy())
    res = bcd(Quadratic(Q, c), rule="cyclic", partition="tree", update="gabp", max_iter=5000, tol=1e-11)
    assert res.status is Status.CONVERGED
    assert np.linalg.norm(res.x.numpy() - x_star) <= 1e-8 * np.linalg.norm(x_star)
    with pytest.raises(ValueError, match="Quadratic"):
        A, b = _dense_problem(10, 6)
        bcd(LeastSquares(A, b), partition="tree")


def test_gabp_reuses_precisions_for_new_right_hand_sides():
    rng = np.random.default_rng(5)
    Q = _lattice(1, 0.3)[:1, :1].toarray()                                       # 1 x 1 edge case
    assert np.allclose(ForestGaBP(Q).solve([2.0]).numpy(), [2.0 / Q[0, 0]])
    n = 60
    path = sparse.diags([-np.ones(n - 1), 3 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]).toarray()
    solver = ForestGaBP(path)
    for _ in range(3):
        c = rng.standard_normal(n)
        assert np.allclose(solver.solve(c).numpy(), np.linalg.solve(path, c), rtol=1e-12, atol=1e-12)


def test_datasets_b_and_c_follow_the_reference_recipe():
    A, y = dataset_b(200, 500, seed=1)
    assert A.shape == (200, 500) and set(y.unique().tolist()) <= {-1.0, 1.0}
    density = float((A != 0).double().mean())
    assert density == pytest.approx(10 * np.log(200) / 200, rel=0.1)              # kept w.p. 10 log(n)/n
    rng = np.random.RandomState(1)                                                # the recipe, re-drawn
    A_ref = (rng.randn(200, 500) + 1.0) * (10.0 * rng.randn(500))[None, :]
    A_ref *= rng.rand(200, 500) < 10 * np.log(200) / 200
    w = rng.randn(500) * (rng.rand(500) < 0.1)
    flips = np.sign(rng.rand(200) - 0.1)
    assert np.array_equal(A.numpy(), A_ref)
    assert np.array_equal(y.numpy(), np.where(A_ref @ w >= 0, 1.0, -1.0) * flips)
    assert 0.03 <= float((flips < 0).mean()) <= 0.2
    A, labels = dataset_c(150, 120, n_classes=7)
    assert A.shape == (150, 120) and labels.dtype == torch.int64 and 0 <= int(labels.min()) <= int(labels.max()) < 7
    res = bcd(Softmax(A / A.abs().max(), labels, n_classes=7), rule="gsl", partition="sort", block_size=7,
              update="lb", max_iter=200, on_failure="ignore")
    h = res.history
    assert bool((h[1:] <= h[:-1] + 1e-12 * h[:-1].abs()).all()) and h[-1] < h[0]
