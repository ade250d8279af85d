"""FunBaT moment algebra against brute-force per-observation Kronecker products (float64)."""

from __future__ import annotations

import pytest
import torch

from sciml.tensor import funbat_moments as mom


def _problem(gen, ranks=(2, 3, 2), sizes=(5, 4, 6), n=40):
    kw = {"dtype": torch.float64}
    means = [torch.randn(s, r, generator=gen, **kw) for s, r in zip(sizes, ranks)]
    covs = []
    for s, r in zip(sizes, ranks):
        a = torch.randn(s, r, r, generator=gen, **kw)
        covs.append(0.1 * a @ a.transpose(-1, -2))
    index = [torch.randint(0, s, (n,), generator=gen) for s in sizes]
    y = torch.randn(n, generator=gen, **kw)
    core = torch.randn(*ranks, generator=gen, **kw)
    a = torch.randn(core.numel(), core.numel(), generator=gen, **kw)
    core_cov = 0.01 * a @ a.T
    return means, covs, index, y, core, core_cov


def _kron(mats):
    out = mats[0]
    for m in mats[1:]:
        out = torch.kron(out, m)
    return out


def test_unfolding_convention_matches_full_contraction(gen):
    means, _, index, _, core, _ = _problem(gen)
    for n in range(5):
        u = [m[i[n]] for m, i in zip(means, index)]
        full = core.reshape(-1) @ _kron(u)
        for k in range(3):
            others = _kron([u[j] for j in range(3) if j != k])
            unfolded = torch.movedim(core, k, 0).reshape(core.shape[k], -1)
            torch.testing.assert_close(u[k] @ (unfolded @ others), full, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("budget", [37, 10**7])
def test_tucker_mode_messages_equal_brute_force(gen, budget):
    means, covs, index, y, core, core_cov = _problem(gen)
    factors = [mom.sqrt_factors(m, c) for m, c in zip(means, covs)]
    second = [mom.second_moments(m, c) for m, c in zip(means, covs)]
    ranks, sizes = core.shape, [m.shape[0] for m in means]
    for k in range(3):
        others = [j for j in range(3) if j != k]
        unfolded = torch.movedim(core, k, 0).reshape(ranks[k], -1)
        cov4 = torch.movedim(core_cov.reshape(*ranks, *ranks), (k, 3 + k), (0, 3))
        cov4 = cov4.reshape(ranks[k], unfolded.shape[1], ranks[k], unfolded.shape[1])
        lam = torch.zeros(sizes[k], ranks[k], ranks[k], dtype=torch.float64)
        extra, eta = torch.zeros_like(lam), torch.zeros(sizes[k], ranks[k], dtype=torch.float64)
        for n in range(y.shape[0]):
            z = _kron([means[j][index[j][n]] for j in others])
            Z = _kron([second[j][index[j][n]] for j in others])
            lam[index[k][n]] += unfolded @ Z @ unfolded.T
            eta[index[k][n]] += y[n] * (unfolded @ z)
            extra[index[k][n]] += torch.einsum("piqj,ij->pq", cov4, Z)
        got_lam, got_eta = mom.tucker_mode_messages(core, factors, index, y, k, sizes[k], budget=budget)
        torch.testing.assert_close(got_lam, lam, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(got_eta, eta, rtol=1e-12, atol=1e-12)
        exact, _ = mom.tucker_mode_messages(core, factors, index, y, k, sizes[k], core_cov, budget=budget)
        torch.testing.assert_close(exact, lam + extra, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("budget", [50, 10**7])
def test_core_statistics_and_predictive_moments_equal_brute_force(gen, budget):
    means, covs, index, y, core, core_cov = _problem(gen)
    factors = [mom.sqrt_factors(m, c) for m, c in zip(means, covs)]
    second = [mom.second_moments(m, c) for m, c in zip(means, covs)]
    zz = sum(_kron([s[i[n]] for s, i in zip(second, index)]) for n in range(y.shape[0]))
    zy = sum(y[n] * _kron([m[i[n]] for m, i in zip(means, index)]) for n in range(y.shape[0]))
    got_zz, got_zy = mom.tucker_core_stats(factors, index, y, budget=budget)
    torch.testing.assert_close(got_zz, zz, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_zy, zy, rtol=1e-12, atol=1e-12)
    mean, var = mom.tucker_predictive(core, core_cov, [f[i] for f, i in zip(factors, index)], budget=budget)
    w = core.reshape(-1)
    for n in range(5):
        z = _kron([m[i[n]] for m, i in zip(means, index)])
        Z = _kron([s[i[n]] for s, i in zip(second, index)])
        torch.testing.assert_close(mean[n], w @ z, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(var[n], torch.trace((core_cov + torch.outer(w, w)) @ Z) - (w @ z) ** 2,
                                   rtol=1e-10, atol=1e-12)


def test_cp_messages_are_tucker_with_superdiagonal_core(gen):
    means, covs, index, y, _, _ = _problem(gen, ranks=(3, 3, 3))
    factors = [mom.sqrt_factors(m, c) for m, c in zip(means, covs)]
    diag = torch.zeros(3, 3, 3, dtype=torch.float64)
    diag[range(3), range(3), range(3)] = 1.0
    for k in range(3):
        S = means[k].shape[0]
        cp = mom.cp_mode_messages(factors, index, y, k, S)
        tucker = mom.tucker_mode_messages(diag, factors, index, y, k, S)
        torch.testing.assert_close(cp[0], tucker[0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(cp[1], tucker[1], rtol=1e-12, atol=1e-12)
    gathered = [f[i] for f, i in zip(factors, index)]
    zero = torch.zeros(27, 27, dtype=torch.float64)
    for got, want in zip(mom.cp_predictive(gathered), mom.tucker_predictive(diag, zero, gathered)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
