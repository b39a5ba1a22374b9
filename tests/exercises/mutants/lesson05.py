"""Plausible wrong answers to lesson 05's whole-derivation tasks (5.3, 5.4); each must lose points."""

MUTANTS = [
    # 5.3: the NELBO of alpha_t = 1 - t^k
    ("5.3", "weight -alpha' = k t^(k-1), not divided by 1 - alpha",
     "w = k / t ", "w = k * t ** (k - 1) "),
    ("5.3", "the log-linear weight 1/t copied for the new schedule",
     "w = k / t ", "w = 1 / t "),
    ("5.3", "the sign of the weight: alpha'/(1 - alpha)",
     "w = k / t ", "w = -k / t "),
    ("5.3", "masks with probability alpha_t (r < alpha) instead of 1 - alpha_t",
     "r >= alpha[:, None]", "r < alpha[:, None]"),
    ("5.3", "masks with probability t (the log-linear rate), not t^k",
     "alpha = 1 - t ** k ", "alpha = 1 - t "),
    ("5.3", "independent times (one uniform per row), not antithetic",
     "    u = torch.rand(1, generator=generator, dtype=torch.float64)\n"
     "    t = torch.remainder(u + torch.arange(B, dtype=torch.float64) / B, 1.0)",
     "    t = torch.rand(B, generator=generator, dtype=torch.float64)"),
    ("5.3", "divides by the number of masked tokens, not by B L",
     "return (w * per_seq).sum() / (B * L)", "return (w * per_seq).sum() / (xt == mask_id).sum().clamp(min=1)"),
    # 5.4: the T-step NELBO, term by term
    ("5.4", "the continuous weight 1/t at every step (T times too large)",
     "weight = (alpha_s - alpha_t) / (1 - alpha_t)", "weight = 1 / t"),
    ("5.4", "weight alpha_s - alpha_t, not divided by 1 - alpha_t",
     "weight = (alpha_s - alpha_t) / (1 - alpha_t)", "weight = alpha_s - alpha_t"),
    ("5.4", "steps walked i = 1..T (draws in the wrong order)",
     "for i in range(T, 0, -1):", "for i in range(1, T + 1):"),
    ("5.4", "off by one: t = (i + 1)/T, s = i/T",
     "t, s = i / T, (i - 1) / T", "t, s = (i + 1) / T, i / T"),
    ("5.4", "one uniform draw r shared by all steps (a nested chain, not a fresh x_t per step)",
     "        r = torch.rand(B, L, generator=generator, dtype=torch.float64)\n        xt = torch.where(r >= alpha_t,",
     "        r = torch.rand(B, L, generator=generator, dtype=torch.float64) if i == T else r\n"
     "        xt = torch.where(r >= alpha_t,"),
    ("5.4", "per sequence (divided by B), not per token",
     "return total / (B * L)", "return total / B"),
]
