"""Numerical constants shared by families and transforms."""

#: logit given to positions outside a distribution's support (e.g. future positions
#: under causal attention): exp(MASK - x) is exactly 0 in float32 and float64 for any
#: reasonable x, and MASK - MASK stays exact (no inf - inf = nan).
MASK = -1.0e4
