"""The mean-field limit of CBO, computed: its Fokker--Planck equation on a grid in 1-D and 2-D, the exact
moment equations of consensus-based sampling on quadratics, and distances between particles and densities.

* :func:`solve` -- the CBO mean-field equation (structure preserving: mass exact, density >= 0);
* :func:`cbs_moments` -- the closed-form mean and covariance ODEs of CBS for a quadratic objective;
* :func:`w1`, :func:`sliced_w1` -- Wasserstein-1 distance between N particles and a grid density;
* :func:`prox_consensus` -- the mean-field consensus of a Gaussian around x, the limit of a hopping step.

Needs scipy (``pip install cbopt[scipy]``). See docs/meanfield.md.
"""

from .compare import chaos, gaussian, particle_laws, prox_consensus, sliced_w1, w1
from .moments import cbs_moments, gaussian_consensus
from .solver import Grid, MeanFieldResult, consensus, face_weights, solve

__all__ = ["Grid", "MeanFieldResult", "cbs_moments", "chaos", "consensus", "face_weights", "gaussian",
           "gaussian_consensus", "particle_laws", "prox_consensus", "sliced_w1", "solve", "w1"]
