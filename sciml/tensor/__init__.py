"""sciml.tensor: continuous tensor formats and decompositions (Chebyshev-Tucker, FunBaT).

Imports only sciml.core and sciml.linalg.
"""

# --- Chebyshev-Tucker (issue 4): exports below this line ---
from sciml.tensor.chebyshev_tucker import ChebyshevTucker, CPTensor
from sciml.tensor.ct_rhosvd import RHOSVDFit, rhosvd
from sciml.tensor.potentials import (Charges, GaussianSum, direct_sum, gaussian, gaussian_sum_cp, lattice_charges,
                                     newton, newton_long, newton_short, random_charges, sinc_gaussian_sum, slater,
                                     yukawa)

# --- FunBaT (issue 5): exports below this line ---
