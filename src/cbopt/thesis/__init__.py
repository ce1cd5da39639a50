"""The paper's thesis, measurable: CBO as a stochastic relaxation of gradient descent.

* :mod:`~cbopt.thesis.prox` — reference proximal maps ``prox_{tau f}`` (closed forms, scipy, grids) and the
  minimizing-movement iteration;
* :mod:`~cbopt.thesis.baselines` — gradients (torch autograd or central differences), gradient descent and
  annealed Langevin dynamics, batched over runs;
* :mod:`~cbopt.thesis.diagnostics` — consensus-hopping steps, the Laplace-principle curve, the distance
  between CH steps and the prox, the Stein form of the CH step, and the alignment of CBO's consensus
  displacement with ``-grad f``;
* :mod:`~cbopt.thesis.figures` — the paper's illustrations and our additions (``cbopt paper``).

Reference: Riedl, Klock, Geldhauser, Fornasier, arXiv:2306.09778.
"""

from .baselines import annealed_langevin, gradient, gradient_descent
from .diagnostics import alignment, ch_steps, laplace_curve, prox_error, stein_step
from .prox import minimizing_movement, prox, prox_l1, prox_quadratic

__all__ = [
    "alignment", "annealed_langevin", "ch_steps", "gradient", "gradient_descent", "laplace_curve",
    "minimizing_movement", "prox", "prox_error", "prox_l1", "prox_quadratic", "stein_step",
]
