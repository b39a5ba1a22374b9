"""The reversal curse, AR vs MDM, in miniature (lesson 13; LLaDA's Table 4 in shape).

    python benchmarks/reversal_curse.py [--steps 3000] [--json benchmarks/results/reversal_cpu.json]

Both models are the same nano Transformer (4 layers, d_model 128, word tokens, rows of 12)
trained for the same steps and batch on the same texts from ``minidlm.reversal``: every fact
"Pelo has a pet named Rudy." stated forward, and half of them also in reverse ("Rudy is the pet
of Pelo."), so the reverse *format* is known but the other half's reverse *statement* never seen.
On that held-out half we ask, greedily (every name is one token):

  forward  "Pelo has a pet named ____"          -> Rudy   (the seen direction)
  reverse  "Rudy is the pet of ____"            -> Pelo   (the unseen direction)
  infill   "____ has a pet named Rudy."         -> Pelo   (the reverse question inside the seen
                                                            sentence: needs right-hand context)

AR answers left to right (KV cache); MDM unmasks the one blank.
AR cannot infill by generating, but it can rank: ``ar_rank`` scores every candidate person in the
full sentence and picks the likeliest (the knowledge is there; only its direction is fixed).
Accuracy is tracked during training so the curves show when each skill appears. Words, not BPE or
characters, so that a name is the same single token at the start of a sentence and after a space (a
byte-level BPE gives "Pelo" and " Pelo" different ids, and the held-out " Pelo" would never be seen)
and so that a fact is one association between two tokens.
Writes JSON and a PNG beside it; ``--quick`` (or MINIDLM_SMOKE=1) runs a few steps of a tiny model.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from minidlm.data import batch_at, pad_documents
from minidlm.model import Model, ModelConfig
from minidlm.reversal import BLANK, make_reversal_task, score_answers
from minidlm.sampling import generate, generate_ar
from minidlm.tokenizer import CharTokenizer
from minidlm.train import TrainConfig, compute_loss, lr_at

L = 12          # row length: "[BOS] Rudy is the pet of Pelo . [EOS]" is 10 tokens
NAME = 1        # every name is one word token


class WordTokenizer(CharTokenizer):
    """One token per word (and per "."): each distinct word is stored as one private-use character
    of a CharTokenizer, so ids, special tokens, save/load all come from minidlm.tokenizer."""

    def __init__(self, words):
        self.words = sorted(set(words))
        self.code = {w: chr(0xE000 + i) for i, w in enumerate(self.words)}
        self.word_of = {c: w for w, c in self.code.items()}
        super().__init__(self.code[w] for w in self.words)

    @staticmethod
    def split(text: str) -> list[str]:
        return text.replace(".", " .").split()

    @classmethod
    def from_texts(cls, texts):
        return cls(w for t in texts for w in cls.split(t))

    def encode(self, text: str, add_special: bool = False) -> list[int]:
        return super().encode("".join(self.code.get(w, "\x00") for w in self.split(text)), add_special)

    def encode_batch(self, texts, add_special: bool = False):
        return [self.encode(t, add_special) for t in texts]

    def decode(self, ids, skip_special: bool = False) -> str:
        return " ".join(self.word_of.get(c, c) for c in super().decode(ids, skip_special=True))


def build(objective: str, tok, quick: bool) -> Model:
    size = dict(n_layer=1, d_model=32, n_head=2) if quick else {}
    cfg = ModelConfig.preset("nano", max_len=L, vocab_size=tok.vocab_size,
                             mask_id=tok.mask_id if objective == "mdm" else None, **size)
    return Model(cfg)


@torch.no_grad()
def answer_ar(model, tok, prompts: list[str]) -> list[str]:
    """Greedy continuation of each prompt by NAME tokens."""
    ids = torch.tensor([[tok.bos_id, *tok.encode(p)] for p in prompts])        # (Q, P): prompts of equal length
    out = generate_ar(model, ids.shape[1] + NAME, prompt=ids, batch_size=len(prompts), temperature=0,
                      return_trace=False)                                       # (Q, P + NAME)
    return [tok.decode(r[-NAME:]) for r in out.tolist()]


@torch.no_grad()
def answer_mdm(model, tok, templates: list[str]) -> list[str]:
    """Fill the NAME-letter blank of each template ("... ____ ..."): one slot per step, most confident first."""
    rows = []
    for t in templates:
        left, right = t.split(BLANK)
        row = [tok.bos_id, *tok.encode(left), *[tok.mask_id] * NAME, *tok.encode(right), tok.eos_id]
        rows.append(row + [tok.eos_id] * (L - len(row)))
    x = torch.tensor(rows)                                                        # (Q, L)
    out = generate(model, L, NAME, tok.mask_id, given=x, temperature=0, return_trace=False)
    starts = [len(tok.encode(t.split(BLANK)[0])) + 1 for t in templates]       # the blank, after [BOS]
    return [tok.decode(r[s:s + NAME]) for r, s in zip(out.tolist(), starts)]


@torch.no_grad()
def answer_ar_rank(model, tok, queries, candidates: list[str]) -> list[str]:
    """For each infill query pick the candidate whose full sentence the AR model finds likeliest."""
    preds = []
    for template, _ in queries:
        sents = [template.replace(BLANK, c) for c in candidates]
        x = pad_documents(tok.encode_batch(sents), L, tok.bos_id, tok.eos_id)  # (C, L)
        n = torch.tensor([len(tok.encode(s)) + 2 for s in sents])                # tokens incl. [BOS], [EOS]
        logp = torch.log_softmax(model(x, is_causal=True).float(), -1)          # (C, L, V)
        tok_lp = logp[:, :-1].gather(-1, x[:, 1:, None]).squeeze(-1)            # (C, L - 1)
        keep = torch.arange(L - 1)[None] < (n[:, None] - 1)
        preds.append(candidates[int((tok_lp * keep).sum(1).argmax())])
    return preds


def evaluate(objective, model, tok, task, rank: bool = False) -> dict:
    model.eval()
    fwd = [(q + " " + BLANK + ".", a) for q, a in task.forward_queries]
    rev = [(q + " " + BLANK + ".", a) for q, a in task.reverse_queries]
    rev_seen = [(f"{pet} is the pet of {BLANK}.", person) for person, pet in task.both_facts]
    res = {}
    for name, qs in (("forward", fwd), ("reverse", rev), ("reverse_seen", rev_seen), ("infill", task.infill_queries)):
        if objective == "ar" and name == "infill":
            continue
        if objective == "ar":
            preds = answer_ar(model, tok, [q.split(" " + BLANK)[0] + " " for q, _ in qs])
        else:
            preds = answer_mdm(model, tok, [q for q, _ in qs])
        res[name] = score_answers(preds, [a for _, a in qs])
    if objective == "ar" and rank:
        persons = sorted({p for p, _ in task.facts})
        res["infill_by_ranking"] = score_answers(answer_ar_rank(model, tok, task.infill_queries, persons),
                                                 [a for _, a in task.infill_queries])
    model.train()
    return res


def run(objective: str, task, tok, steps: int, batch: int, eval_every: int, seed: int, quick: bool) -> dict:
    torch.manual_seed(seed)
    data = pad_documents(tok.encode_batch(task.train_texts), L, tok.bos_id, tok.eos_id)   # (N, L)
    model = build(objective, tok, quick)
    cfg = TrainConfig(objective=objective, seq_len=L, batch_size=batch, steps=steps, warmup=min(100, steps // 10),
                      lr=3e-3, progress=False, seed=seed)
    opt = model.configure_optimizer(cfg.weight_decay, cfg.lr, device_type="cpu")
    curve, t0 = [], time.time()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        x0 = batch_at(data, step, batch, seed)
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        loss = compute_loss(model, x0, cfg, tok.mask_id, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            acc = evaluate(objective, model, tok, task, rank=step + 1 == steps)
            curve.append({"step": step + 1, "loss": loss.item(), **acc})
            print(json.dumps({"objective": objective, "seed": seed, **curve[-1]}), flush=True)
    return {"objective": objective, "seed": seed, "steps": steps, "batch_size": batch,
            "params": sum(p.numel() for p in model.parameters()), "seconds": time.time() - t0,
            "final": curve[-1], "curve": curve}


def plot(runs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, obj in zip(axes, ("ar", "mdm")):
        for r in (r for r in runs if r["objective"] == obj):
            for j, key in enumerate(("forward", "reverse", "infill", "reverse_seen")):
                if key in r["curve"][0]:
                    ax.plot([c["step"] for c in r["curve"]], [c[key] for c in r["curve"]], color=f"C{j}",
                            label=key if r["seed"] == runs[0]["seed"] else None, alpha=0.9)
        ax.set_title({"ar": "autoregressive", "mdm": "masked diffusion"}[obj])
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("exact-match accuracy (held-out facts)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000, help="training steps of each model")
    ap.add_argument("--mdm-steps", type=int, default=None, help="steps for the MDM if different (default --steps)")
    ap.add_argument("--objectives", nargs="+", default=["ar", "mdm"], choices=["ar", "mdm"])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--facts", type=int, default=200, help="facts in all; half are test facts")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="one pair of runs per seed (init, data order, masking)")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--json", default="benchmarks/results/reversal_cpu.json")
    ap.add_argument("--quick", action="store_true", help="a tiny model, a few steps: checks the script runs")
    a = ap.parse_args(argv)
    quick = a.quick or os.environ.get("MINIDLM_SMOKE") == "1"
    steps, facts = (20, 20) if quick else (a.steps, a.facts)
    task = make_reversal_task(n_facts=facts, seed=0, repeats=1)
    tok = WordTokenizer.from_texts(task.train_texts)
    eval_every = max(1, steps // 2) if quick else a.eval_every
    steps_of = {"ar": steps, "mdm": a.mdm_steps if a.mdm_steps and not quick else steps}
    runs = [run(obj, task, tok, steps_of[obj], min(a.batch_size, len(task.train_texts)), eval_every, seed, quick)
            for seed in a.seeds for obj in a.objectives]
    out = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
           "threads": torch.get_num_threads(), "facts": facts, "test_facts": len(task.test_facts),
           "train_texts": len(task.train_texts), "tokenizer": "words", "row_length": L,
           "quick": quick, "runs": runs}
    path = Path(a.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    plot(runs, path.with_suffix(".png"))
    print(f"wrote {path} and {path.with_suffix('.png')}")
    return out


if __name__ == "__main__":
    main()
