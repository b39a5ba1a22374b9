"""Lesson 15 - beyond [MASK]: uniform-state diffusion (UDLM / Duo) and remasking (ReMDM).

Imports: torch, math and the standard library. Do not import minidlm: the grader gives 0 to a
task whose function calls minidlm's own code (its reference answer).

Uniform-state diffusion has no [MASK]: the states are the token ids 0..K-1, and the forward
process replaces a token by a uniformly random state (possibly itself):

    q(x_t | x_0) = Cat(alpha_t onehot(x_0) + (1 - alpha_t) / K),
    q(x_t | x_s) = Cat(alpha_{t|s} onehot(x_s) + (1 - alpha_{t|s}) / K),   alpha_{t|s} = alpha_t / alpha_s,

for s < t (alpha_s >= alpha_t). A corrupted token looks like any other, so the reverse process
may change every position at every step.

Remasking (ReMDM) goes back to masked diffusion: its sampler may send a decoded token back to
[MASK] with probability sigma, and decodes a [MASK] a little more often to make up for it.
"""
import torch


def uniform_corrupt(x0, alpha_t, n_states, generator):
    """Task 15.1: sample x_t ~ q(x_t | x_0) of the uniform process over the states 0..n_states-1.

    Each token is kept with probability alpha_t; otherwise it is replaced by a uniform draw over
    the n_states states, which may happen to be the token itself. So

        P(x_t = x_0) = alpha_t + (1 - alpha_t) / K,   P(x_t = j) = (1 - alpha_t) / K  for j != x_0.

    Every position draws independently. x0: (B, L) int64 ids in [0, n_states); alpha_t: a float
    or a (B,) tensor (one alpha per row) in [0, 1]; n_states: int K >= 1; generator: a
    torch.Generator for every random draw. Do not modify x0. Returns x_t: (B, L), x0's dtype.
    """
    B, L = x0.shape
    a = torch.as_tensor(alpha_t, dtype=torch.float64).reshape(-1, 1).expand(B, 1)   # (B, 1)
    keep = torch.rand((B, L), generator=generator, dtype=torch.float64) < a     # (B, L)
    r = torch.randint(n_states, (B, L), generator=generator)                      # (B, L) uniform state
    return torch.where(keep, x0, r.to(x0.dtype))


def uniform_posterior(xt, x0_probs, alpha_t, alpha_s):
    """Task 15.2: the posterior q(x_s | x_t, x_0) of the uniform process, s < t.

    By Bayes' rule, with i = x_t and x = x0_probs at that position (a one-hot of x_0, or the
    model's prediction x_theta plugged in for it), for every state j:

        q(x_s = j | x_t = i, x)  proportional to  q(x_t = i | x_s = j) * q(x_s = j | x)
                              =  (alpha_{t|s} [i = j] + (1 - alpha_{t|s}) / K) * (alpha_s x_j + (1 - alpha_s) / K),

    normalised over j (the normaliser is q(x_t = i | x) = alpha_t x_i + (1 - alpha_t) / K).
    alpha_{t|s} = alpha_t / alpha_s. alpha_s = 1 is the last step (x_s = x_0); alpha_t = 0 is
    t = 1, where x_t says nothing about x_s.
    xt: (B, L) int64 ids in [0, K); x0_probs: (B, L, K) float, probability vectors; alpha_t,
    alpha_s: floats or (B,) tensors with 0 <= alpha_t <= alpha_s <= 1 and alpha_s > 0.
    Returns (B, L, K) float64, each row summing to 1.
    """
    B, L, K = x0_probs.shape
    a_t = torch.as_tensor(alpha_t, dtype=torch.float64).reshape(-1, 1, 1).expand(B, 1, 1)   # (B, 1, 1)
    a_s = torch.as_tensor(alpha_s, dtype=torch.float64).reshape(-1, 1, 1).expand(B, 1, 1)
    a_ts = a_t / a_s                                                             # alpha_{t|s}
    onehot_t = torch.nn.functional.one_hot(xt.long(), K).double()               # (B, L, K)
    fwd = a_ts * onehot_t + (1 - a_ts) / K                                       # q(x_t = i | x_s = j)
    prior = a_s * x0_probs.double() + (1 - a_s) / K                              # q(x_s = j | x)
    post = fwd * prior                                                           # (B, L, K)
    return post / post.sum(-1, keepdim=True)


def udlm_integrand(x_theta, x0, xt, alpha, dalpha):
    """Task 15.3: UDLM's continuous-time NELBO integrand per position (B, L), float64.

    Forward process: q(x_t | x_0) = Cat(alpha onehot(x_0) + (1 - alpha) / K), alpha = alpha(t)
    decreasing, dalpha = alpha'(t) <= 0. The T-step NELBO sums, over the steps s -> t, the KL
    between q(x_s | x_t, x_0) and the model's p(x_s | x_t) = q(x_s | x_t, x_theta) (task 15.2);
    divided by t - s, each KL term has a limit as s -> t, and the NELBO becomes the integral
    over t in (0, 1) of E_{x_t}[ this limit ]. The lesson derives it. Write, over the K states,

        xbar       = K alpha onehot(x_0) + (1 - alpha)       (K times q(x_t | x_0)),
        xbar_theta = K alpha x_theta     + (1 - alpha)       (the same with x_theta plugged in),

    and i = x_t. Going backwards in time, the process jumps from i to j != i at rates
    proportional to xbar_j / xbar_i (the model's: xbar_theta,j / xbar_theta,i), with the common
    factor -alpha' / (K alpha). The integrand is the KL-type divergence between the two sets of
    rates:

        alpha' / (K alpha) * [ K / xbar_i - K / xbar_theta,i - sum_{j != i} R_j log(R_j / R_theta,j) ],

        R_j = xbar_j / xbar_i,   R_theta,j = xbar_theta,j / xbar_theta,i,

    which is >= 0, and 0 when x_theta = onehot(x_0).
    x_theta: (B, L, K) float probabilities; x0, xt: (B, L) int64 ids in [0, K); alpha, dalpha:
    (B,) float tensors, 0 < alpha < 1 (one time per row). Compute in float64. Returns (B, L).
    """
    B, L, K = x_theta.shape
    a = torch.as_tensor(alpha, dtype=torch.float64).reshape(-1, 1, 1)          # (B, 1, 1)
    da = torch.as_tensor(dalpha, dtype=torch.float64).reshape(-1, 1)            # (B, 1)
    x = torch.nn.functional.one_hot(x0.long(), K).double()                      # (B, L, K)
    xbar = K * a * x + (1 - a)                                                  # (B, L, K)
    xbar_th = K * a * x_theta.double() + (1 - a)
    i = xt.long()[..., None]                                                    # (B, L, 1)
    xbar_i, xbar_th_i = xbar.gather(-1, i), xbar_th.gather(-1, i)               # (B, L, 1)
    ratio = xbar / xbar_i                                                       # (B, L, K) xbar_j / xbar_i
    ratio_th = xbar_th / xbar_th_i                                              # the model's
    terms = ratio * (ratio.log() - ratio_th.log())                              # (B, L, K); 0 at j = i
    others = torch.ones_like(terms, dtype=torch.bool).scatter(-1, i, False)     # j != i
    kl_sum = torch.where(others, terms, torch.zeros_like(terms)).sum(-1)       # (B, L)
    bracket = K / xbar_i[..., 0] - K / xbar_th_i[..., 0] - kl_sum               # (B, L)
    return da / (K * a[..., 0]) * bracket


def remdm_step(x, cand, alpha_t, alpha_s, sigma, mask_id, u, fixed):
    """Task 15.4: one ReMDM step t -> s (alpha_t < alpha_s) of a masked-diffusion sampler.

    With the remasking probability sigma (0 <= sigma <= min(1, (1 - alpha_s) / alpha_t)), each
    position uses its own uniform number u:

      a decoded token (x != mask_id) goes back to mask_id when u < sigma (kept otherwise),
          except at the ``fixed`` positions (the prompt), which never change;
      a [MASK] becomes the model's token cand when u < (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t)
          (stays [MASK] otherwise).

    Both rules look at x as it was before the step. sigma = 0 is MDLM's ancestral step. The two
    probabilities are chosen so that, when a share 1 - alpha_t of the tokens are masked before
    the step, a share 1 - alpha_s are masked after it, on average.
    x, cand: (B, L) int64; alpha_t, alpha_s, sigma: floats; mask_id: int; u: (B, L) float64 in
    [0, 1); fixed: (B, L) bool or None. Returns the new tokens (B, L) (do not modify x).
    """
    is_mask = x == mask_id                                                      # (B, L)
    p_unmask = (alpha_s - (1 - sigma) * alpha_t) / (1 - alpha_t)
    unmask = is_mask & (u < p_unmask)                                           # (B, L)
    remask = ~is_mask & (u < sigma)
    if fixed is not None:
        remask = remask & ~fixed
    x = torch.where(unmask, cand, x)
    return torch.where(remask, torch.full_like(x, mask_id), x)
