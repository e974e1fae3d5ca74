"""The MRF baseline: pairwise (Potts, contrast-sensitive) MRFs over probability maps.

``decoders`` holds the decoders (exact graph cut, alpha-expansion, ICM, loopy BP, mean field),
the energy and the choice of beta; ``_kernels`` their numba kernels and the max-flow graph.
"""

from .decoders import (DEFAULT_BETAS, EPS, METHODS, decode, default_sigma, edge_weights, energy, graphcut_binary,
                       marginals, select_beta)

__all__ = ["DEFAULT_BETAS", "EPS", "METHODS", "decode", "default_sigma", "edge_weights", "energy", "graphcut_binary",
           "marginals", "select_beta"]
