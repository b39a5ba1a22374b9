"""AR-to-diffusion adaptation: start a masked diffusion model from a trained AR model (lesson 14).

Used by the training loop of lesson 06 (``train --init-from CKPT --anneal-steps N --shift-logits``):

* ``init_from_checkpoint`` copies every tensor of an AR checkpoint into a freshly built MDM. The
  architectures must agree tensor for tensor; RoPE has no learned positions, so ``max_len`` may
  differ, and the AR model's embedding already has a row for [MASK] (a normal, rarely seen row).
* ``anneal_mask`` is DiffuLLaMA's attention annealing: for step < anneal_steps, causal attention
  plus each future key visible with probability step / anneal_steps (one (L, L) mask per step,
  shared by the batch, drawn from the step's generator so a resumed run repeats it); from
  anneal_steps on, None: fully bidirectional.
* The AR shift (Dream) lives in ``ModelConfig.shift_logits``: the head at l - 1 predicts token l.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ._validate import check_positive_int

# architecture fields that decide the tensors and what they mean; max_len, mask_id, dropout and
# shift_logits may differ between the AR source and the diffusion model
ARCH_FIELDS = ("vocab_size", "n_layer", "n_head", "d_model", "mlp_ratio", "tie_embeddings", "bias", "rope_base")


def anneal_mask(step: int, anneal_steps: int, L: int, generator: torch.Generator | None = None,
                device=None) -> torch.Tensor | None:
    """None (bidirectional) once step >= anneal_steps, else a bool (L, L) mask, True = may attend:
    causal, plus each future key with probability p = step / anneal_steps (exactly causal at step 0)."""
    check_positive_int("step", step, minimum=0)
    check_positive_int("anneal_steps", anneal_steps, minimum=0)
    check_positive_int("L", L)
    if step >= anneal_steps:
        return None
    p = step / anneal_steps
    gen_device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand((L, L), generator=generator, dtype=torch.float64, device=gen_device)  # (L, L)
    causal = torch.ones(L, L, dtype=torch.bool, device=gen_device).tril()                # (L, L)
    return (causal | (u < p)).to(device)                                                  # (L, L)


def _tokens(tok) -> list[str]:
    return [tok.id_to_token(i) for i in range(tok.vocab_size)]


def init_from_checkpoint(model: torch.nn.Module, init_from, tok=None) -> dict:
    """Copy the weights of the checkpoint ``init_from`` (a run folder, a shipped checkpoint folder or
    a checkpoint .json) into ``model``, in place. ValueError naming init_from when the two
    architectures or vocabularies differ (``tok``: the run's tokenizer, compared with the
    checkpoint folder's tokenizer.json when there is one). Returns the source's model config."""
    from .checkpoint import load_checkpoint, _tags_in
    from .model import ModelConfig

    from .checkpoint_read import _is_hub_source

    path = Path(init_from)
    if _is_hub_source(init_from):                                   # a Hub-layout folder or id (appendix A1)
        from .hub_format import load_pretrained
        try:
            m, info = load_pretrained(init_from)
        except (ValueError, FileNotFoundError) as e:
            raise ValueError(f"init_from: cannot load {init_from}: {e}") from None
        ck, path = {"model_config": info["model_config"], "state_dict": m.state_dict()}, Path(info["folder"])
    else:
        if not path.exists():
            raise ValueError(f"init_from: no checkpoint at {path}")
        tag = "last"
        if path.is_dir() and not (path / "last.json").is_file():
            tags = _tags_in(path)
            if len(tags) != 1:
                raise ValueError(f"init_from: expected a run folder with last.json or a folder with one checkpoint, "
                                 f"found tags {tags} in {path}")
            tag = tags[0]
        try:
            ck = load_checkpoint(path, tag=tag, map_location="cpu")
        except (ValueError, FileNotFoundError) as e:
            raise ValueError(f"init_from: cannot load {path}: {e}") from None
    src = ModelConfig.from_dict(ck["model_config"]).to_dict()
    dst = model.config.to_dict()
    diff = {k: (src[k], dst[k]) for k in ARCH_FIELDS if src[k] != dst[k]}
    if diff:
        raise ValueError(f"init_from: {path} has another architecture or vocabulary than the model to train "
                         f"(field: (checkpoint, model)) {diff}; train with the same preset/overrides and tokenizer")
    state = ck["state_dict"]
    expected = model.state_dict()
    bad = sorted(set(state) ^ set(expected)) + sorted(
        f"{k}: {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if bad:
        raise ValueError(f"init_from: the tensors of {path} do not match the model's: {bad}")
    folder = path if path.is_dir() else path.parent
    if tok is not None and (folder / "tokenizer.json").is_file():
        from .tokenizer import load_tokenizer
        if _tokens(load_tokenizer(folder / "tokenizer.json")) != _tokens(tok):
            raise ValueError(f"init_from: {folder / 'tokenizer.json'} is another vocabulary than the run's "
                             f"tokenizer (same size {tok.vocab_size}, other tokens)")
    with torch.no_grad():
        model.load_state_dict(state, strict=True)   # in place: the optimizer keeps its parameters
    return ck["model_config"]


__all__ = ["anneal_mask", "init_from_checkpoint", "ARCH_FIELDS"]
