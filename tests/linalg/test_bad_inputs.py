"""Bad-input battery: every public sciml.linalg function with NaN, wrong shape, wrong dtype (int / complex),
non-symmetric input where symmetry is assumed, and out-of-range options. Each case must raise ValueError or
TypeError whose message names the problem (the regex). ``python -m pytest tests/linalg/test_bad_inputs.py -q``
prints the count: every passing case is a "clear error" (issue 11 asks for all of them).
"""

from __future__ import annotations

import pytest
import torch

import sciml.linalg as la

F64 = torch.float64
NAN = float("nan")


def spd(n=4):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g, dtype=F64)
    return a @ a.T + n * torch.eye(n, dtype=F64)


def nonsym(n=40):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, n, generator=g, dtype=F64) + n**0.5 * torch.eye(n, dtype=F64)


def with_nan(x):
    x = x.clone()
    x.view(-1)[0] = NAN
    return x


KRON = la.KroneckerOperator([spd(2), spd(3)])
V6 = torch.ones(6, dtype=F64)
T345 = torch.randn(3, 4, 5, dtype=F64, generator=torch.Generator().manual_seed(2))
COEF = torch.randn(4, 5, dtype=F64, generator=torch.Generator().manual_seed(3))
PTS = torch.zeros(7, 2, dtype=F64)

# (id, call, message regex). Categories: nan, shape, dtype-int, dtype-complex, nonsym, option.
CASES = [
    # ---- operators ---------------------------------------------------------------------------------------------
    ("Kronecker/nan-factor", lambda: la.KroneckerOperator([with_nan(spd(2))]), "NaN"),
    ("Kronecker/shape-factor", lambda: la.KroneckerOperator([torch.ones(2, 3, dtype=F64)]), "square"),
    ("Kronecker/int-factor", lambda: la.KroneckerOperator([torch.eye(2, dtype=torch.int64)]), "floating"),
    ("Kronecker/complex-factor", lambda: la.KroneckerOperator([torch.eye(2, dtype=torch.complex128)]), "real"),
    ("Kronecker/nonsym-solve", lambda: la.KroneckerOperator([nonsym(3)]).solve(torch.ones(3, dtype=F64)),
     "not symmetric"),
    ("Kronecker/nan-rhs", lambda: KRON.solve(with_nan(V6)), "NaN"),
    ("Kronecker/nan-shift", lambda: KRON.solve(V6, shift=NAN), "shift must be finite"),
    ("Kronecker/inf-shift-logdet", lambda: KRON.logdet(shift=float("inf")), "shift must be finite"),
    ("Kronecker/shape-rhs", lambda: KRON.solve(torch.ones(5, dtype=F64)), "does not match"),
    ("Kronecker/int-rhs", lambda: KRON.solve(torch.ones(6, dtype=torch.int64)), "floating"),
    ("Kronecker/complex-rhs", lambda: KRON.solve(torch.ones(6, dtype=torch.complex128)), "complex"),
    ("Kronecker/dtype-rhs", lambda: KRON.solve(torch.ones(6, dtype=torch.float32)), "float32"),
    ("Kronecker/method", lambda: KRON.solve(V6, method="qr"), "method must be one of"),
    ("Kronecker/shift-type", lambda: KRON.solve(V6, shift="big"), "shift must be a real number"),
    ("Kronecker/logdet-indefinite", lambda: la.KroneckerOperator([-spd(2)]).logdet(), "not positive definite"),
    ("Kronecker/matmul-shape", lambda: KRON @ torch.ones(4, dtype=F64), "cannot act"),
    ("Kronecker/matmul-nan", lambda: KRON @ with_nan(V6), "NaN"),
    ("Kronecker/matmul-int", lambda: KRON @ torch.ones(6, dtype=torch.int64), "dtype"),
    ("DenseOperator/nan", lambda: la.DenseOperator(with_nan(spd(3))), "NaN"),
    ("DenseOperator/shape", lambda: la.DenseOperator(torch.ones(3, dtype=F64)), "2-D"),
    ("DenseOperator/int", lambda: la.DenseOperator(torch.eye(3, dtype=torch.int64)), "floating"),
    ("DenseOperator/nonsym-logdet", lambda: la.DenseOperator(nonsym(4)).logdet(), "symmetric"),
    ("DenseOperator/nan-shift", lambda: la.DenseOperator(spd(3)).solve(torch.ones(3, dtype=F64), shift=NAN),
     "shift must be finite"),
    ("MatvecOperator/shape", lambda: la.MatvecOperator(lambda x: x, (0, 3)), "positive"),
    ("MatvecOperator/dtype", lambda: la.MatvecOperator(lambda x: x, 3, dtype=torch.int64), "floating"),
    ("MatvecOperator/not-callable", lambda: la.MatvecOperator("x", 3), "callable"),
    ("SparseOperator/dense", lambda: la.SparseOperator(spd()), "sparse tensor"),
    ("SparseOperator/nan", lambda: la.SparseOperator(with_nan(spd()).to_sparse_coo()), "NaN"),
    ("SparseOperator/int", lambda: la.SparseOperator(torch.eye(3, dtype=torch.int64).to_sparse_coo()), "floating"),
    ("as_operator/type", lambda: la.as_operator("matrix"), "expected a LinearOperator"),
    ("as_operator/callable-no-n", lambda: la.as_operator(lambda x: x), "needs n="),
    ("to_linear_operator/type", lambda: la.to_linear_operator(spd()), "expects a sciml LinearOperator"),
    ("from_linear_operator/type", lambda: la.from_linear_operator(spd()), "expects a linear_operator"),
    ("to_scipy/type", lambda: la.to_scipy(spd()), "expects a sciml LinearOperator"),
    ("from_scipy/type", lambda: la.from_scipy(spd()), "expects a scipy"),
    ("kron_apply/shape", lambda: la.kron_apply([spd(2), spd(3)], torch.ones(5, 1, dtype=F64)), "rows"),
    ("kron_apply/dtype", lambda: la.kron_apply([spd(2)], torch.ones(2, 1, dtype=torch.float32)), "dtype"),
    ("check_symmetric_probe/nonsym", lambda: la.check_symmetric_probe(la.DenseOperator(nonsym()), "test"),
     "needs a symmetric operator"),
    # ---- Krylov ------------------------------------------------------------------------------------------------
    ("cg/nan-b", lambda: la.conjugate_gradient(spd(), with_nan(torch.ones(4, dtype=F64))), "NaN"),
    ("cg/nan-operator", lambda: la.conjugate_gradient(with_nan(spd()), torch.ones(4, dtype=F64)), "NaN"),
    ("cg/shape", lambda: la.conjugate_gradient(spd(), torch.ones(5, dtype=F64)), "b must have shape"),
    ("cg/int-b", lambda: la.conjugate_gradient(spd(), torch.ones(4, dtype=torch.int64)), "floating"),
    ("cg/complex-b", lambda: la.conjugate_gradient(spd(), torch.ones(4, dtype=torch.complex128)), "real"),
    ("cg/nonsym", lambda: la.conjugate_gradient(nonsym(), torch.ones(40, dtype=F64)), "symmetric"),
    ("cg/rtol-nan", lambda: la.conjugate_gradient(spd(), torch.ones(4, dtype=F64), rtol=NAN), "rtol"),
    ("cg/atol-neg", lambda: la.conjugate_gradient(spd(), torch.ones(4, dtype=F64), atol=-1.0), "atol"),
    ("lanczos/nan", lambda: la.lanczos(with_nan(spd())), "NaN"),
    ("lanczos/shape", lambda: la.lanczos(torch.ones(3, 4, dtype=F64)), "square"),
    ("lanczos/int", lambda: la.lanczos(torch.eye(4, dtype=torch.int64)), "floating"),
    ("lanczos/complex", lambda: la.lanczos(torch.eye(4, dtype=torch.complex128)), "real"),
    ("lanczos/nonsym", lambda: la.lanczos(nonsym(), k=2), "symmetric"),
    ("lanczos/k", lambda: la.lanczos(spd(), k=9), "k must be"),
    ("lanczos/which", lambda: la.lanczos(spd(), k=1, which="middle"), "which must be"),
    ("lanczos/tol-nan", lambda: la.lanczos(spd(), k=1, tol=NAN), "tol must be"),
    ("power/nan", lambda: la.power_iteration(with_nan(spd())), "NaN"),
    ("power/shape-v0", lambda: la.power_iteration(spd(), v0=torch.ones(3, dtype=F64)), "v0"),
    ("power/int", lambda: la.power_iteration(torch.eye(4, dtype=torch.int64)), "floating"),
    ("power/nonsym", lambda: la.power_iteration(nonsym()), "symmetric"),
    ("power/max_iter", lambda: la.power_iteration(spd(), max_iter=0), "max_iter"),
    ("power/tol-nan", lambda: la.power_iteration(spd(), tol=NAN), "tol must be"),
    ("slq/nan", lambda: la.slq_density(with_nan(spd())), "NaN"),
    ("slq/shape", lambda: la.slq_density(torch.ones(3, 4, dtype=F64)), "square"),
    ("slq/complex", lambda: la.slq_density(torch.eye(4, dtype=torch.complex128)), "real"),
    ("slq/nonsym", lambda: la.slq_density(nonsym()), "symmetric"),
    ("slq/num_probes", lambda: la.slq_density(spd(), num_probes=0), "num_probes"),
    ("slq/sigma-nan", lambda: la.slq_density(spd(), sigma=NAN), "sigma"),
    ("slq/grid", lambda: la.slq_density(spd(), grid=1), "grid"),
    # ---- trace estimators --------------------------------------------------------------------------------------
    ("hutchinson_trace/nan", lambda: la.hutchinson_trace(with_nan(spd())), "NaN"),
    ("hutchinson_trace/shape", lambda: la.hutchinson_trace(torch.ones(3, 4, dtype=F64)), "square"),
    ("hutchinson_trace/int", lambda: la.hutchinson_trace(torch.eye(4, dtype=torch.int64)), "floating"),
    ("hutchinson_trace/probes", lambda: la.hutchinson_trace(spd(), num_probes=1), "num_probes"),
    ("hutchinson_trace/distribution", lambda: la.hutchinson_trace(spd(), distribution="cauchy"),
     "distribution"),
    ("hutchinson_diagonal/nan", lambda: la.hutchinson_diagonal(with_nan(spd())), "NaN"),
    ("hutchinson_diagonal/complex", lambda: la.hutchinson_diagonal(torch.eye(4, dtype=torch.complex128)), "real"),
    ("hutchinson_diagonal/block", lambda: la.hutchinson_diagonal(spd(), block_size=0), "block_size"),
    ("hutchpp/nan", lambda: la.hutchpp_trace(with_nan(spd())), "NaN"),
    ("hutchpp/shape", lambda: la.hutchpp_trace(torch.ones(3, 4, dtype=F64)), "square"),
    ("hutchpp/matvecs", lambda: la.hutchpp_trace(spd(), num_matvecs=4), "num_matvecs"),
    # ---- matrix functions --------------------------------------------------------------------------------------
    ("newton_schulz/nan", lambda: la.newton_schulz(with_nan(spd())), "NaN"),
    ("newton_schulz/shape", lambda: la.newton_schulz(torch.ones(4, dtype=F64)), "at least 2 dims"),
    ("newton_schulz/int", lambda: la.newton_schulz(torch.eye(4, dtype=torch.int64)), "floating"),
    ("newton_schulz/complex", lambda: la.newton_schulz(torch.eye(4, dtype=torch.complex128)), "real"),
    ("newton_schulz/steps", lambda: la.newton_schulz(spd(), steps=-1), "steps"),
    ("newton_schulz/dtype", lambda: la.newton_schulz(spd(), dtype=torch.int32), "dtype must be one of"),
    ("newton_schulz/eps", lambda: la.newton_schulz(spd(), eps=NAN), "eps"),
    ("polar/nan", lambda: la.polar(with_nan(spd())), "NaN"),
    ("polar/shape", lambda: la.polar(torch.ones(4, dtype=F64)), "at least 2 dims"),
    ("polar/complex", lambda: la.polar(torch.eye(4, dtype=torch.complex128)), "real"),
    ("sqrtm_psd/nan", lambda: la.sqrtm_psd(with_nan(spd())), "NaN"),
    ("sqrtm_psd/shape", lambda: la.sqrtm_psd(torch.ones(3, 4, dtype=F64)), "square"),
    ("sqrtm_psd/int", lambda: la.sqrtm_psd(torch.eye(3, dtype=torch.int64)), "floating"),
    ("sqrtm_psd/complex", lambda: la.sqrtm_psd(torch.eye(3, dtype=torch.complex128)), "real"),
    ("sqrtm_psd/nonsym", lambda: la.sqrtm_psd(nonsym(4)), "symmetric"),
    ("sqrtm_psd/indefinite", lambda: la.sqrtm_psd(-spd()), "not positive semi-definite"),
    ("sqrtm_psd/tol", lambda: la.sqrtm_psd(spd(), tol=-1.0), "tol"),
    ("inv_sqrtm_psd/eps", lambda: la.inv_sqrtm_psd(spd(), eps=-1.0), "eps"),
    ("inv_sqrtm_psd/eps-nan", lambda: la.inv_sqrtm_psd(spd(), eps=NAN), "eps"),
    ("inv_sqrtm_psd/singular", lambda: la.inv_sqrtm_psd(torch.zeros(3, 3, dtype=F64)), "singular"),
    ("logm_psd/nonsym", lambda: la.logm_psd(nonsym(4)), "symmetric"),
    ("logm_psd/nan", lambda: la.logm_psd(with_nan(spd())), "NaN"),
    ("spd_sqrtm/nonsym", lambda: la.spd_sqrtm(nonsym(4)), "symmetric"),
    ("spd_inv_sqrtm/indefinite", lambda: la.spd_inv_sqrtm(-spd()), "not positive definite"),
    ("spd_power/p", lambda: la.spd_power(spd(), float("inf")), "p must be"),
    ("eigenvalue_clamp/floor", lambda: la.eigenvalue_clamp(spd(), float("nan")), "floor must be"),
    ("eigenvalue_clamp/nonsym", lambda: la.eigenvalue_clamp(nonsym(), 0.1), "symmetric"),
    ("spd_logm/complex", lambda: la.spd_logm(spd().to(torch.complex128)), "real symmetric"),
    ("spd_matrix_function/shape", lambda: la.spd_matrix_function(torch.ones(3, 4, dtype=F64), torch.sqrt,
                                                                  torch.sqrt), "square"),
    ("lyapunov_solve/nan", lambda: la.lyapunov_solve(spd(), with_nan(spd())), "NaN"),
    ("lyapunov_solve/int", lambda: la.lyapunov_solve(torch.eye(3, dtype=torch.int64), spd(3)), "floating"),
    ("divided_differences/type", lambda: la.divided_differences([1.0, 2.0], torch.sqrt, torch.sqrt), "tensor"),
    # ---- tensor algebra ----------------------------------------------------------------------------------------
    ("unfold/mode", lambda: la.unfold(T345, 3), "mode must be in"),
    ("unfold/type", lambda: la.unfold("x", 0), "torch.Tensor"),
    ("fold/shape", lambda: la.fold(torch.ones(3, 7, dtype=F64), 0, (3, 4, 5)), "cannot fold"),
    ("mode_product/shape", lambda: la.mode_product(T345, torch.ones(2, 3, dtype=F64), 1), "does not match"),
    ("mode_product/mode", lambda: la.mode_product(T345, torch.ones(2, 3, dtype=F64), 5), "mode must be in"),
    ("mode_product/dtype", lambda: la.mode_product(T345, torch.ones(2, 4, dtype=torch.float32), 1), "dtype"),
    ("multi_mode_product/count", lambda: la.multi_mode_product(T345, [torch.ones(2, 3, dtype=F64)], modes=[0, 1]),
     "matrices for"),
    ("khatri_rao/shape", lambda: la.khatri_rao([torch.ones(3, 2, dtype=F64), torch.ones(3, 4, dtype=F64)]),
     "same number of columns"),
    ("khatri_rao/empty", lambda: la.khatri_rao([]), "at least one"),
    ("kron_vector/empty", lambda: la.kron_vector([]), "at least one"),
    ("kron_vector/shape", lambda: la.kron_vector([torch.ones(2, 2, dtype=F64)]), "1-D"),
    # ---- Tucker ------------------------------------------------------------------------------------------------
    ("tucker_hosvd/nan", lambda: la.tucker_hosvd(with_nan(T345), ranks=2), "NaN"),
    ("tucker_hosvd/shape", lambda: la.tucker_hosvd(torch.ones(4, dtype=F64)), "at least 2 modes"),
    ("tucker_hosvd/int", lambda: la.tucker_hosvd(torch.ones(3, 4, dtype=torch.int64)), "floating"),
    ("tucker_hosvd/complex", lambda: la.tucker_hosvd(T345.to(torch.complex128), ranks=2), "real tensor"),
    ("tucker_hosvd/rank", lambda: la.tucker_hosvd(T345, ranks=9), "rank 9"),
    ("tucker_hosvd/rank-count", lambda: la.tucker_hosvd(T345, ranks=[2, 2]), "ranks for a 3-way"),
    ("tucker_hosvd/tol", lambda: la.tucker_hosvd(T345, tol=1.5), "tol must be in"),
    ("tucker_hosvd/tol-nan", lambda: la.tucker_hosvd(T345, tol=NAN), "tol must be in"),
    ("tucker_hosvd/method", lambda: la.tucker_hosvd(T345, ranks=2, method="qr"), "method must be"),
    ("tucker_hooi/nan", lambda: la.tucker_hooi(with_nan(T345), ranks=2), "NaN"),
    ("tucker_hooi/complex", lambda: la.tucker_hooi(T345.to(torch.complex128), ranks=2), "real tensor"),
    ("tucker_hooi/rank-none", lambda: la.tucker_hooi(T345, ranks=[2, None, 2]), "rank for every mode"),
    ("tucker_hooi/n_iter", lambda: la.tucker_hooi(T345, ranks=2, n_iter_max=0), "n_iter_max"),
    ("tucker_hooi/tol-nan", lambda: la.tucker_hooi(T345, ranks=2, tol=NAN), "tol must be"),
    # ---- Chebyshev ---------------------------------------------------------------------------------------------
    ("chebyshev_nodes/n", lambda: la.chebyshev_nodes(0), "n"),
    ("chebyshev_nodes/kind", lambda: la.chebyshev_nodes(5, kind=3), "kind must be"),
    ("chebyshev_nodes/domain-nan", lambda: la.chebyshev_nodes(5, domain=(0.0, NAN)), "finite"),
    ("chebyshev_nodes/dtype", lambda: la.chebyshev_nodes(5, dtype=torch.int64), "dtype"),
    ("chebyshev_coefficients/nan", lambda: la.chebyshev_coefficients(with_nan(COEF)), "NaN"),
    ("chebyshev_coefficients/complex", lambda: la.chebyshev_coefficients(COEF.to(torch.complex128)), "real"),
    ("chebyshev_coefficients/dims", lambda: la.chebyshev_coefficients(COEF, dims=5), "dims"),
    ("chebyshev_values/int", lambda: la.chebyshev_values(torch.ones(3, dtype=torch.int64)), "floating"),
    ("chebyshev_values/kind", lambda: la.chebyshev_values(COEF, kind=0), "kind must be"),
    ("chebyshev_basis/nan", lambda: la.chebyshev_basis(with_nan(torch.zeros(3, dtype=F64)), 4), "NaN"),
    ("chebyshev_basis/shape", lambda: la.chebyshev_basis(torch.zeros(3, 2, dtype=F64), 4), "shape"),
    ("chebyshev_basis/outside", lambda: la.chebyshev_basis(torch.tensor([2.0], dtype=F64), 4), "outside"),
    ("chebyshev_evaluate/nan", lambda: la.chebyshev_evaluate(COEF, with_nan(PTS)), "NaN"),
    ("chebyshev_evaluate/shape", lambda: la.chebyshev_evaluate(COEF, torch.zeros(7, 3, dtype=F64)), "shape"),
    ("chebyshev_evaluate/complex", lambda: la.chebyshev_evaluate(COEF, PTS.to(torch.complex128)), "real"),
    ("chebyshev_derivative/order", lambda: la.chebyshev_derivative(COEF, order=-1), "order"),
    ("chebyshev_derivative/dim", lambda: la.chebyshev_derivative(COEF, dim=4), "dims"),
    ("chebyshev_integral_weights/n", lambda: la.chebyshev_integral_weights(0), "n"),
    ("chebyshev_integral_weights/domain", lambda: la.chebyshev_integral_weights(5, domain=(1.0, 0.0)), "a < b"),
    ("chebyshev_integrate/nan", lambda: la.chebyshev_integrate(with_nan(COEF)), "NaN"),
    # ---- log-domain reductions and Jacobi ----------------------------------------------------------------------
    ("log_kernel_reduce/nan", lambda: la.log_kernel_reduce(with_nan(COEF), torch.zeros(4, dtype=F64),
                                                           torch.zeros(5, dtype=F64), 1.0), "NaN"),
    ("log_kernel_reduce/eta", lambda: la.log_kernel_reduce(COEF, torch.zeros(4, dtype=F64),
                                                           torch.zeros(5, dtype=F64), -1.0), "eta must be"),
    ("jacobi_preconditioner/indefinite", lambda: la.jacobi_preconditioner(-spd(3)), "positive diagonal"),
    ("jacobi_preconditioner/nan", lambda: la.jacobi_preconditioner(None, diagonal=with_nan(V6)), "NaN"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_clear_error(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_battery_covers_every_public_function():
    """Every name in sciml.linalg.__all__ that is a function or operator class has at least one case."""
    covered = {c[0].split("/")[0] for c in CASES}
    aliases = {"conjugate_gradient": "cg", "power_iteration": "power", "slq_density": "slq",
               "hutchpp_trace": "hutchpp", "KroneckerOperator": "Kronecker"}
    exempt = {"LinearOperator"}  # abstract base: its checks are exercised through the subclasses
    public = [name for name in la.__all__ if callable(getattr(la, name)) and name[0].islower()
              or name.endswith("Operator")]
    missing = [n for n in public if n not in exempt and aliases.get(n, n) not in covered
               and n not in ("as_operator",) + tuple(covered)]
    # result dataclasses (…Result, Estimate, TuckerFit, …) are outputs, not entry points
    assert not missing, f"no bad-input case for {missing}"
