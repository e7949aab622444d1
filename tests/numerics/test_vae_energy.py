"""What the PC-KL energy of a VAE is, in float64, on a linear-Gaussian VAE written out
by hand: at the forward state the single-sample negative ELBO; after converged
inference the minimum over the bottleneck's q of KL(q || q_enc) + KL(q || prior) + the
reconstruction of q's sample (the same eps), which is lower."""

import torch

from tests.numerics.graphs import batch_for, program

LINEAR_VAE = """
name: lvae
nodes:
  image: {shape: [6], role: input, bind: image}
  z: {shape: [2], family: gaussian_meanvar, prior: standard_normal}
  recon: {shape: [6], family: {type: gaussian, variance: 0.5}, role: target, bind: image}
edges:
  - {from: image, to: z}
  - {from: z, to: recon}
"""
S2 = 0.5


def by_hand(prog, x, eps, u, s):
    """Per sample: (KL(q || q_enc), KL(q || N(0, 1)), reconstruction), q = N(u, e^s)."""
    enc, dec = prog.edge_modules["e0"], prog.edge_modules["e1"]
    mu_u, mu_s = (x @ enc.weight.T + enc.bias).chunk(2, -1)
    kl_enc = 0.5 * (torch.exp(s - mu_s) + (u - mu_u) ** 2 * torch.exp(-mu_s) - 1 + mu_s - s).sum(-1)
    kl_prior = 0.5 * (torch.exp(s) + u**2 - 1 - s).sum(-1)
    sample = u + eps * torch.exp(0.5 * s)
    recon = 0.5 * ((x - sample @ dec.weight.T - dec.bias) ** 2).sum(-1) / S2
    return kl_enc, kl_prior, recon


def test_forward_energy_is_the_single_sample_negative_elbo():
    prog = program(LINEAR_VAE)
    batch = batch_for(prog, B=5)
    state = prog.init_state(batch)
    x, eps = batch["image"], state.noise["z"]
    enc = prog.edge_modules["e0"]
    u, s = (x @ enc.weight.T + enc.bias).chunk(2, -1)
    kl_enc, kl_prior, recon = by_hand(prog, x, eps, u, s)
    torch.testing.assert_close(kl_enc, torch.zeros_like(kl_enc))
    per_sample = torch.stack(list(prog.node_energies(state).values())).sum(0)
    torch.testing.assert_close(per_sample, kl_prior + recon)
    # ...which is the loss every method reports (same eps)
    torch.testing.assert_close(prog.loss_bp(batch, noise=state.noise), (kl_prior + recon).mean())


def test_energy_after_inference_is_the_minimum_over_q_and_lower():
    prog = program(LINEAR_VAE)
    batch = batch_for(prog, B=4)
    state = prog.init_state(batch)
    prog.infer(state, steps=400)
    x, eps = batch["image"], state.noise["z"]
    # the same minimum found independently: L-BFGS on the hand-written expression
    enc = prog.edge_modules["e0"]
    start = (x @ enc.weight.T + enc.bias).detach()
    q = start.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [q], max_iter=500, tolerance_grad=1e-14, tolerance_change=1e-16, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        total = sum(t.sum() for t in by_hand(prog, x, eps, *q.chunk(2, -1)))
        total.backward()
        return total

    with torch.enable_grad():
        opt.step(closure)
    u, s = q.detach().chunk(2, -1)
    expected = sum(by_hand(prog, x, eps, u, s))
    pc = torch.stack(list(prog.node_energies(state).values())).sum(0)
    torch.testing.assert_close(pc, expected, rtol=1e-7, atol=1e-9)
    kl_enc, kl_prior, recon = by_hand(prog, x, eps, *start.chunk(2, -1))
    assert (pc < kl_prior + recon).all()  # below the negative ELBO it started from
