"""Plausible wrong answers to lesson 07's whole-sampler tasks (7.5 LLaDA, 7.6 ancestral with its cache);
each must lose points on its task (``python tests/exercises/mutants/run.py lesson07``)."""

_GUMBEL_76 = """            u_gumbel = torch.rand(logits.shape, generator=generator, dtype=torch.float64)
            gumbel = -torch.log(-torch.log(u_gumbel.clamp_min(1e-300)))         # (B, L, V)
            u = torch.rand(x.shape, generator=generator, dtype=torch.float64)   # (B, L)
"""

MUTANTS = [
    # ---- 7.5: the LLaDA loop
    ("7.5", "blocks counted from position 0, not from the end of the prompt (off by one after [BOS])",
     "eligible = block_eligible(x == mask_id, b, block_length, start)",
     "eligible = block_eligible(x == mask_id, b, block_length)"),
    ("7.5", "the block's masks counted over one position too many (lo:lo + block_length + 1)",
     "n_block = (x[:, lo:lo + block_length] == mask_id).sum(1)",
     "n_block = (x[:, lo:lo + block_length + 1] == mask_id).sum(1)"),
    ("7.5", "every position of the block eligible, masked or not: committed tokens can be re-committed",
     "eligible = block_eligible(x == mask_id, b, block_length, start)",
     "eligible = block_eligible(torch.ones_like(x, dtype=torch.bool), b, block_length, start)"),
    ("7.5", "the least confident proposals committed first (the ranking inverted)",
     "commit = low_confidence_commit(conf, eligible, counts[:, i])",
     "commit = low_confidence_commit(-conf, eligible, counts[:, i])"),
    ("7.5", "every block gets all T steps (steps per block not divided by the number of blocks)",
     "    per_block = steps // n_blocks\n",
     "    per_block = steps\n"),
    ("7.5", "Gumbel noise drawn in float32",
     "u = torch.rand(logits.shape, generator=generator, dtype=torch.float64)",
     "u = torch.rand(logits.shape, generator=generator, dtype=torch.float32)"),
    ("7.5", "Gumbel noise drawn as (V, L, B) and transposed (the wrong order of the draws)",
     "u = torch.rand(logits.shape, generator=generator, dtype=torch.float64)",
     "u = torch.rand(logits.shape[::-1], generator=generator, dtype=torch.float64).permute(2, 1, 0)"),
    ("7.5", "confidence from the tempered softmax instead of the model's own probabilities",
     "conf = torch.softmax(logits, -1).gather(-1, cand[..., None]).squeeze(-1)",
     "conf = torch.softmax(logits / max(temperature, 1e-6), -1).gather(-1, cand[..., None]).squeeze(-1)"),
    # ---- 7.6: the ancestral loop and its no-change cache
    ("7.6", "cache never invalidated: the first call's logits reused after tokens changed",
     "            if changed:\n",
     "            if logits is None:\n"),
    ("7.6", "cache never used: a network call at every step (calls == T)",
     "changed = not torch.equal(x_s, x)",
     "changed = True"),
    ("7.6", "time grid off by one: t = (T+1)/T, ..., 2/T, never reaching s = 0",
     "for i in range(steps, 0, -1):",
     "for i in range(steps + 1, 1, -1):"),
    ("7.6", "alpha_s and alpha_t swapped",
     "x_s = ancestral_step(logits, x, 1 - t, 1 - s, gumbel, u, mask_id)",
     "x_s = ancestral_step(logits, x, 1 - s, 1 - t, gumbel, u, mask_id)"),
    ("7.6", "no noise drawn on cached steps (the Gumbel noise of the last call reused)",
     "                calls += 1\n" + _GUMBEL_76,
     "                calls += 1\n" + "\n".join("    " + line if "gumbel" in line else line
                                               for line in _GUMBEL_76.split("\n"))),
    ("7.6", "the reveal coins u drawn before the Gumbel noise",
     _GUMBEL_76,
     "\n".join(_GUMBEL_76.split("\n")[i] for i in (2, 0, 1, 3))),
]
