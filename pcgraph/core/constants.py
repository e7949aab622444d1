"""Constants shared by the parts: numerical ones, and the names of choices that the
spec, the compiler and the command line all list."""

#: logit given to positions outside a distribution's support (e.g. future positions
#: under causal attention): exp(MASK - x) is exactly 0 in float32 and float64 for any
#: reasonable x, and MASK - MASK stays exact (no inf - inf = nan).
MASK = -1.0e4

#: the energies a program can be compiled with: F_KL ("kl") and standard PC's F ("gaussian")
ENERGIES = ("kl", "gaussian")

#: the GEMM backends of linear edges that ``train.kernels`` names (besides "auto")
GEMM_BACKENDS = ("default", "onednn", "onednn-packed")
