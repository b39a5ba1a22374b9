"""Bad inputs to the public API: every one is refused by minidlm itself with a ValueError (or the
documented FileNotFoundError) whose message starts with the name of the argument at fault, never
with an opaque error from deep inside torch, ``datasets`` or ``tokenizers``, a silently wrong
result or a hang. A few good inputs close to the edges check that the checks are not over-eager.

Each case is ``(id, call, error type, argument)``; ``call`` takes the ``Env`` of tiny models,
tokenizers and files built once per module.
"""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import minidlm
from minidlm import losses
from minidlm.data import batch_at, load_tales_tokenizer, load_text, pack_blocks, pad_documents
from minidlm.esolm import esolm_loss, esolm_sample
from minidlm.length import end_distribution
from minidlm.model import Model, ModelConfig
from minidlm.sampling import (MAX_ANCESTRAL_STEPS, ancestral, edit, generate, generate_adaptive, generate_ar,
                              least_confident_positions)
from minidlm.tokenizer import CharTokenizer

V, MASK, L = 12, 11, 16
PACKAGE = Path(minidlm.__file__).resolve().parent


def make_env(folder: Path) -> SimpleNamespace:
    """Tiny models (a denoiser, a Dream-style shifted denoiser, an AR model, an Eso-LM-sized
    denoiser), the shipped tokenizers, and bad text files under ``folder``."""
    torch.manual_seed(0)
    size = dict(vocab_size=V, n_layer=1, n_head=2, d_model=16)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\x00\xff\xfe\x01\x02 not text")
    (folder / "latin1.txt").write_bytes("caf\u00e9 cr\u00e8me br\u00fbl\u00e9e\n".encode("latin-1"))
    (folder / "nul.txt").write_bytes(b"\x00\x00\x00\n")          # valid UTF-8, yet binary
    (folder / "no_txt").mkdir(exist_ok=True)
    (folder / "no_txt" / "notes.md").write_text("a story\n")
    return SimpleNamespace(
        mdm=Model(ModelConfig(max_len=L, mask_id=MASK, **size)).eval(),
        dream=Model(ModelConfig(max_len=L, mask_id=MASK, shift_logits=True, **size)).eval(),
        ar=Model(ModelConfig(max_len=L, **size)).eval(),
        eso=Model(ModelConfig(max_len=2 * L, mask_id=MASK, **size)).eval(),
        char=load_tales_tokenizer("char"), bpe=load_tales_tokenizer("bpe"), dir=folder)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return make_env(tmp_path_factory.mktemp("bad_inputs"))


def text(n=L):
    return torch.arange(n)[None].remainder(10).expand(2, -1).clone()        # (2, n) ids, no [MASK]


x0 = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
xt = torch.tensor([[1, MASK, 3, MASK], [MASK, 6, MASK, 8]])
logits4 = torch.zeros(2, 4, V)
t2 = torch.tensor([0.5, 0.5])


def nelbo(**kw):
    args = dict(logits=logits4, x0=x0, xt=xt, t=t2, mask_id=MASK) | kw
    return losses.mdlm_nelbo(**args)


def discrete(**kw):
    args = dict(logits=logits4, x0=x0, xt=xt, t=t2, s=torch.tensor([0.25, 0.25]), T=4, mask_id=MASK) | kw
    return losses.discrete_nelbo(**args)


VE, FNF = ValueError, FileNotFoundError
CASES = [
    # generate: the model must fit, every argument in range
    ("generate-causal-AR-model", lambda e: generate(e.ar, L, 4, MASK), VE, "model"),
    ("generate-mask_id-not-the-models", lambda e: generate(e.mdm, L, 4, 5), VE, "mask_id"),
    ("generate-mask_id-None", lambda e: generate(e.mdm, L, 4, None), VE, "mask_id"),
    ("generate-temperature-nan", lambda e: generate(e.mdm, L, 4, MASK, temperature=math.nan), VE, "temperature"),
    ("generate-temperature-inf", lambda e: generate(e.mdm, L, 4, MASK, temperature=math.inf), VE, "temperature"),
    ("generate-temperature-negative", lambda e: generate(e.mdm, L, 4, MASK, temperature=-0.5), VE, "temperature"),
    ("generate-temperature-str", lambda e: generate(e.mdm, L, 4, MASK, temperature="1"), VE, "temperature"),
    ("generate-length-over-max_len", lambda e: generate(e.mdm, 2 * L, 4, MASK), VE, "length"),
    ("generate-length-0", lambda e: generate(e.mdm, 0, 4, MASK), VE, "length"),
    ("generate-steps-0", lambda e: generate(e.mdm, L, 0, MASK), VE, "steps"),
    ("generate-steps-over-length", lambda e: generate(e.mdm, L, L + 1, MASK), VE, "steps"),
    ("generate-batch_size-0", lambda e: generate(e.mdm, L, 4, MASK, batch_size=0), VE, "batch_size"),
    ("generate-block_length-not-a-divisor", lambda e: generate(e.mdm, L, 4, MASK, block_length=5), VE,
     "block_length"),
    ("generate-prompt-fills-length", lambda e: generate(e.mdm, L, 4, MASK, prompt=torch.arange(L) % 10), VE,
     "prompt"),
    ("generate-prompt-id-out-of-vocab", lambda e: generate(e.mdm, L, 4, MASK, prompt=torch.tensor([3, 99])), VE,
     "prompt"),
    ("generate-prompt-id-negative", lambda e: generate(e.mdm, L, 4, MASK, prompt=torch.tensor([-1, 2])), VE,
     "prompt"),
    ("generate-prompt-float", lambda e: generate(e.mdm, L, 4, MASK, prompt=torch.tensor([1.7, 2.0])), VE, "prompt"),
    ("generate-prompt-holds-mask", lambda e: generate(e.mdm, L, 4, MASK, prompt=torch.tensor([1, MASK])), VE,
     "prompt"),
    ("generate-prompt-batch-mismatch",
     lambda e: generate(e.mdm, L, 4, MASK, batch_size=2, prompt=torch.ones(3, 2, dtype=torch.long)), VE, "prompt"),
    ("generate-given-wrong-length",
     lambda e: generate(e.mdm, L, 4, MASK, given=torch.full((1, L // 2), MASK)), VE, "given"),
    ("generate-given-rows-not-batch_size",
     lambda e: generate(e.mdm, L, 4, MASK, batch_size=4, given=torch.full((1, L), MASK)), VE, "given"),
    ("generate-given-id-out-of-vocab",
     lambda e: generate(e.mdm, L, 4, MASK, given=torch.full((1, L), MASK).index_fill(1, torch.tensor([0]), 50)),
     VE, "given"),
    ("generate-given-and-prompt", lambda e: generate(e.mdm, L, 4, MASK, given=torch.full((1, L), MASK),
                                                     prompt=torch.tensor([1])), VE, "prompt"),
    ("generate-top_k-0", lambda e: generate(e.mdm, L, 4, MASK, top_k=0), VE, "top_k"),
    ("generate-top_p-0", lambda e: generate(e.mdm, L, 4, MASK, top_p=0.0), VE, "top_p"),
    ("generate-top_p-over-1", lambda e: generate(e.mdm, L, 4, MASK, top_p=1.5), VE, "top_p"),
    ("generate-eos_id-out-of-vocab", lambda e: generate(e.mdm, L, 4, MASK, eos_id=V), VE, "eos_id"),
    ("generate-eos_id-is-mask", lambda e: generate(e.mdm, L, 4, MASK, eos_id=MASK), VE, "eos_id"),
    ("generate-remasking-unknown", lambda e: generate(e.mdm, L, 4, MASK, remasking="greedy"), VE, "remasking"),
    ("generate-cfg_scale-nan", lambda e: generate(e.mdm, L, 4, MASK, prompt=torch.tensor([1]), cfg_scale=math.nan),
     VE, "cfg_scale"),
    ("generate-generator-str", lambda e: generate(e.mdm, L, 4, MASK, generator="0"), VE, "generator"),
    # generate_ar: an AR model only
    ("generate_ar-bidirectional-model", lambda e: generate_ar(e.mdm, L, bos_id=1), VE, "model"),
    ("generate_ar-Eso-LM-model", lambda e: generate_ar(e.eso, L, bos_id=1), VE, "model"),
    ("generate_ar-temperature-nan", lambda e: generate_ar(e.ar, L, bos_id=1, temperature=math.nan), VE,
     "temperature"),
    ("generate_ar-length-over-max_len", lambda e: generate_ar(e.ar, 2 * L, bos_id=1), VE, "length"),
    ("generate_ar-bos_id-out-of-vocab", lambda e: generate_ar(e.ar, L, bos_id=V), VE, "bos_id"),
    ("generate_ar-prompt-id-out-of-vocab", lambda e: generate_ar(e.ar, L, prompt=torch.tensor([1, 40])), VE,
     "prompt"),
    ("generate_ar-prompt-float", lambda e: generate_ar(e.ar, L, prompt=torch.tensor([1.0])), VE, "prompt"),
    ("generate_ar-prompt-batch-mismatch",
     lambda e: generate_ar(e.ar, L, batch_size=2, prompt=torch.ones(3, 1, dtype=torch.long)), VE, "prompt"),
    ("generate_ar-batch_size-0", lambda e: generate_ar(e.ar, L, batch_size=0, bos_id=1), VE, "batch_size"),
    ("generate_ar-cache-without-new_cache",
     lambda e: generate_ar(lambda x, **kw: torch.zeros(*x.shape, V), L, bos_id=1), VE, "use_cache"),
    # ancestral
    ("ancestral-steps-a-million", lambda e: ancestral(e.mdm, L, 10**6, MASK), VE, "steps"),
    ("ancestral-steps-over-the-cap", lambda e: ancestral(e.mdm, L, MAX_ANCESTRAL_STEPS + 1, MASK), VE, "steps"),
    ("ancestral-causal-AR-model", lambda e: ancestral(e.ar, L, 4, MASK), VE, "model"),
    ("ancestral-mask_id-not-the-models", lambda e: ancestral(e.mdm, L, 4, 0), VE, "mask_id"),
    ("ancestral-temperature-inf", lambda e: ancestral(e.mdm, L, 4, MASK, temperature=math.inf), VE, "temperature"),
    ("ancestral-schedule-unknown", lambda e: ancestral(e.mdm, L, 4, MASK, schedule="cosyne"), VE, "schedule"),
    ("ancestral-cache_no_change-str", lambda e: ancestral(e.mdm, L, 4, MASK, cache_no_change="no"), VE,
     "cache_no_change"),
    # generate_adaptive
    ("adaptive-threshold-over-1", lambda e: generate_adaptive(e.mdm, L, MASK, threshold=1.5), VE, "threshold"),
    ("adaptive-threshold-nan", lambda e: generate_adaptive(e.mdm, L, MASK, threshold=math.nan), VE, "threshold"),
    ("adaptive-threshold-bool", lambda e: generate_adaptive(e.mdm, L, MASK, threshold=True), VE, "threshold"),
    ("adaptive-max_steps-0", lambda e: generate_adaptive(e.mdm, L, MASK, max_steps=0), VE, "max_steps"),
    ("adaptive-temperature-nan", lambda e: generate_adaptive(e.mdm, L, MASK, temperature=math.nan), VE,
     "temperature"),
    ("adaptive-causal-AR-model", lambda e: generate_adaptive(e.ar, L, MASK), VE, "model"),
    ("adaptive-length-over-max_len", lambda e: generate_adaptive(e.mdm, L + 1, MASK), VE, "length"),
    # edit, least_confident_positions
    ("edit-tokens-float", lambda e: edit(e.mdm, text().float(), MASK, span=(2, 5)), VE, "tokens"),
    ("edit-tokens-out-of-vocab", lambda e: edit(e.mdm, text() + 20, MASK, span=(2, 5)), VE, "tokens"),
    ("edit-tokens-hold-mask", lambda e: edit(e.mdm, text().index_fill(1, torch.tensor([9]), MASK), MASK,
                                             span=(2, 5)), VE, "tokens"),
    ("edit-tokens-longer-than-max_len", lambda e: edit(e.mdm, text(2 * L), MASK, span=(2, 5)), VE, "tokens"),
    ("edit-span-past-the-end", lambda e: edit(e.mdm, text(), MASK, span=(3, 40)), VE, "span"),
    ("edit-span-not-a-pair", lambda e: edit(e.mdm, text(), MASK, span=5), VE, "span"),
    ("edit-span-floats", lambda e: edit(e.mdm, text(), MASK, span=(1.5, 4)), VE, "span"),
    ("edit-positions-wrong-shape", lambda e: edit(e.mdm, text(), MASK, positions=torch.ones(3, dtype=torch.bool)),
     VE, "positions"),
    ("edit-protect-float", lambda e: edit(e.mdm, text(), MASK, span=(2, 5), protect=torch.zeros(L)), VE, "protect"),
    ("edit-steps-0", lambda e: edit(e.mdm, text(), MASK, span=(2, 5), steps=0), VE, "steps"),
    ("edit-causal-AR-model", lambda e: edit(e.ar, text(), MASK, span=(2, 5)), VE, "model"),
    ("edit-mask_id-not-the-models", lambda e: edit(e.mdm, text(), 3, span=(2, 5)), VE, "mask_id"),
    ("edit-sampler_kwargs-given", lambda e: edit(e.mdm, text(), MASK, span=(2, 5), given=text()), VE,
     "sampler_kwargs"),
    ("least_confident-k-0", lambda e: least_confident_positions(e.mdm, text(), 0, MASK), VE, "k"),
    # Eso-LM
    ("esolm_sample-causal-AR-model", lambda e: esolm_sample(e.ar, L, MASK, 0.5), VE, "model"),
    ("esolm_sample-mask_id-not-the-models", lambda e: esolm_sample(e.eso, L, 4, 0.5), VE, "mask_id"),
    ("esolm_sample-temperature-nan", lambda e: esolm_sample(e.eso, L, MASK, 0.5, temperature=math.nan), VE,
     "temperature"),
    ("esolm_sample-alpha0-over-1", lambda e: esolm_sample(e.eso, L, MASK, 1.5), VE, "alpha0"),
    ("esolm_sample-prompt-id-out-of-vocab",
     lambda e: esolm_sample(e.eso, L, MASK, 0.5, prompt=torch.tensor([77])), VE, "prompt"),
    ("esolm_sample-diffusion_steps-huge", lambda e: esolm_sample(e.eso, L, MASK, 0.5, diffusion_steps=10**9), VE,
     "diffusion_steps"),
    ("esolm_sample-top_p-0", lambda e: esolm_sample(e.eso, L, MASK, 0.5, top_p=0), VE, "top_p"),
    ("esolm_loss-x0-out-of-vocab", lambda e: esolm_loss(e.eso, text() + 20, 0.5), VE, "x0"),
    ("esolm_loss-mask_id-not-the-models", lambda e: esolm_loss(e.eso, text(), 0.5, mask_id=3), VE, "mask_id"),
    # losses: t in (0, 1], s < t, ids in range, shapes
    ("mdlm_nelbo-t-0", lambda e: nelbo(t=torch.tensor([0.0, 0.5])), VE, "t"),
    ("mdlm_nelbo-t-negative", lambda e: nelbo(t=-0.5), VE, "t"),
    ("mdlm_nelbo-t-nan", lambda e: nelbo(t=torch.tensor([math.nan, 0.5])), VE, "t"),
    ("mdlm_nelbo-t-one-per-row", lambda e: nelbo(t=torch.tensor([0.5, 0.5, 0.5])), VE, "t"),
    ("mdlm_nelbo-x0-out-of-vocab", lambda e: nelbo(x0=x0 + V), VE, "x0"),
    ("mdlm_nelbo-x0-holds-mask", lambda e: nelbo(x0=xt), VE, "x0"),
    ("mdlm_nelbo-xt-out-of-vocab", lambda e: nelbo(xt=xt + V), VE, "xt"),
    ("mdlm_nelbo-logits-shape", lambda e: nelbo(logits=torch.zeros(2, 3, V)), VE, "logits"),
    ("mdlm_nelbo-reduction-unknown", lambda e: nelbo(reduction="mean"), VE, "reduction"),
    ("mdlm_nelbo-schedule-unknown", lambda e: nelbo(schedule="loglin"), VE, "schedule"),
    ("discrete_nelbo-s-not-below-t", lambda e: discrete(s=torch.tensor([0.5, 0.75])), VE, "s"),
    ("discrete_nelbo-s-negative", lambda e: discrete(s=torch.tensor([-0.25, 0.25])), VE, "s"),
    ("discrete_nelbo-t-0", lambda e: discrete(t=torch.tensor([0.0, 0.5])), VE, "t"),
    ("discrete_nelbo-T-bool", lambda e: discrete(T=True), VE, "T"),
    ("llada_loss-p_mask-nan", lambda e: losses.llada_loss(logits4, x0, xt, torch.tensor([math.nan, 0.5]), MASK), VE,
     "p_mask"),
    ("token_cross_entropy-target-out-of-vocab", lambda e: losses.token_cross_entropy(logits4, x0 + V), VE,
     "targets"),
    ("token_cross_entropy-target-minus-100", lambda e: losses.token_cross_entropy(logits4, x0 * 0 - 100), VE,
     "targets"),
    ("ar_loss-x0-out-of-vocab", lambda e: losses.ar_loss(logits4, x0 + V), VE, "x0"),
    ("ar_loss-one-token", lambda e: losses.ar_loss(logits4[:, :1], x0[:, :1]), VE, "x0"),
    ("subs_logits-mask_id-None", lambda e: losses.subs_logits(logits4, None), VE, "mask_id"),
    ("masked_cross_entropy-vocab-mismatch", lambda e: losses.masked_cross_entropy(torch.zeros(2, 4, 5), x0,
                                                                                   x0 * 0 + 4, 4), VE, "x0"),
    ("score_entropy-x0-out-of-vocab", lambda e: losses.score_entropy(logits4.double(), x0 + V, xt, 1.0, MASK), VE,
     "x0"),
    ("entropy-base-1", lambda e: losses.entropy(torch.tensor([0.5, 0.5]), base=1), VE, "base"),
    # tokenizers: ids in range and integers
    ("char-decode-id-out-of-range", lambda e: e.char.decode([5, e.char.vocab_size]), VE, "ids"),
    ("char-decode-id-negative", lambda e: e.char.decode([5, -1]), VE, "ids"),
    ("char-decode-float-ids", lambda e: e.char.decode([5.7, 6.2]), VE, "ids"),
    ("char-decode-float-tensor", lambda e: e.char.decode(torch.tensor([5.0, 6.0])), VE, "ids"),
    ("char-decode-str-ids", lambda e: e.char.decode(["5"]), VE, "ids"),
    ("char-id_to_token-negative", lambda e: e.char.id_to_token(-1), VE, "i"),
    ("bpe-decode-id-out-of-range", lambda e: e.bpe.decode([5, 10**6]), VE, "ids"),
    ("bpe-id_to_token-out-of-range", lambda e: e.bpe.id_to_token(10**6), VE, "i"),
    ("bpe-token_strings-out-of-range", lambda e: e.bpe.token_strings([10**6]), VE, "ids"),
    ("encode_batch-one-str", lambda e: e.bpe.encode_batch("a story"), VE, "texts"),
    ("decode_batch-flat-ids", lambda e: e.char.decode_batch([5, 6, 7]), VE, "batch"),
    ("CharTokenizer-non-str-chars", lambda e: CharTokenizer([1, 2]), VE, "chars"),
    # data
    ("load_text-empty-file", lambda e: load_text(e.dir / "empty.txt"), VE, "path"),
    ("load_text-binary-file", lambda e: load_text(e.dir / "binary.txt"), VE, "path"),
    ("load_text-latin-1-file", lambda e: load_text(e.dir / "latin1.txt"), VE, "path"),
    ("load_text-NUL-bytes", lambda e: load_text(e.dir / "nul.txt"), VE, "path"),
    ("load_text-folder-without-txt", lambda e: load_text(e.dir / "no_txt"), VE, "path"),
    ("load_text-missing-path", lambda e: load_text(e.dir / "nope.txt"), FNF, "path"),
    ("load_text-path-not-a-path", lambda e: load_text(123), VE, "path"),
    ("load_text-sample_by-unknown", lambda e: load_text(e.dir / "latin1.txt", sample_by="word"), VE, "sample_by"),
    ("pack_blocks-texts-not-ids", lambda e: pack_blocks(["a story"], 4, 1, 2), VE, "docs"),
    ("pad_documents-bos_id-negative", lambda e: pad_documents([[3, 4]], 8, -1, 2), VE, "bos_id"),
    ("batch_at-step-negative", lambda e: batch_at(torch.zeros(4, 3, dtype=torch.long), -1, 2), VE, "step"),
    # length
    ("end_distribution-shape-mismatch", lambda e: end_distribution(torch.zeros(2, 3), torch.zeros(2, 4).long(), MASK),
     VE, "p_eos"),
]


def _argument_names(message: str) -> list[str]:
    """The argument names a message starts with: 'prompt: ...' -> ['prompt'], 'xt, x0: ...' -> both."""
    return [part.strip() for part in message.split(":", 1)[0].split(",")]


@pytest.mark.parametrize("call, error, argument", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_naming_the_argument(env, call, error, argument):
    with pytest.raises(error) as info:
        call(env)
    assert type(info.value) is error, f"expected exactly {error.__name__}, got {type(info.value).__name__}"
    assert argument in _argument_names(str(info.value)), f"the message does not start with {argument!r}: {info.value}"
    raised_in = Path(str(info.traceback[-1].path)).resolve()
    assert PACKAGE in raised_in.parents, f"raised from {raised_in}, not by minidlm's own check"


def test_there_are_at_least_fifty_cases():
    assert len(CASES) >= 50 and len({c[0] for c in CASES}) == len(CASES)


# ---------------------------------------------------------------- good inputs near the edges
def test_a_dream_style_shifted_model_is_a_denoiser(env):
    out, _ = generate(env.dream, L, 4, MASK, prompt=torch.tensor([1]), generator=0)
    assert not (out == MASK).any()
    out, _ = ancestral(env.dream, L, 8, MASK, generator=0)
    assert not (out == MASK).any()
    out, _ = generate_adaptive(env.dream, L, MASK, threshold=0.5, generator=0)
    assert not (out == MASK).any()
    new, _, where = edit(env.dream, text(), MASK, span=(2, 5), generator=0)
    assert torch.equal(new[~where], text()[~where])


@pytest.mark.parametrize("temperature", [0, 0.0, 0.5, 1, 2.0, np.float32(0.7)])
def test_finite_temperatures_and_greedy_zero_are_accepted(env, temperature):
    assert not (generate(env.mdm, L, 4, MASK, temperature=temperature, generator=0)[0] == MASK).any()
    assert not (ancestral(env.mdm, L, 4, MASK, temperature=temperature, generator=0)[0] == MASK).any()
    assert not (generate_adaptive(env.mdm, L, MASK, temperature=temperature, generator=0)[0] == MASK).any()
    assert not (esolm_sample(env.eso, L, MASK, 0.5, temperature=temperature, generator=0)[0] == MASK).any()
    assert generate_ar(env.ar, L, bos_id=1, temperature=temperature, generator=0)[0].shape == (1, L)


def test_ancestral_may_take_more_steps_than_tokens_up_to_the_cap(env):
    out, tr = ancestral(env.mdm, L, 4 * L, MASK, generator=0)
    assert not (out == MASK).any() and tr.steps == 4 * L and tr.nfe <= L + 1   # a call per revealing step, +1
    calls = []
    fixed = torch.randn(1, 4, V)

    def toy(x):
        calls.append(1)
        return fixed.clone()
    out, tr = ancestral(toy, 4, MAX_ANCESTRAL_STEPS, MASK, generator=0)   # a cheap model: the cap itself
    assert tr.steps == MAX_ANCESTRAL_STEPS and len(calls) <= 4 + 1 and not (out == MASK).any()


def test_a_prompt_of_length_minus_one_and_list_prompts(env):
    prompt = (torch.arange(L - 1) % 10).tolist()
    out, tr = generate(env.mdm, L, 1, MASK, prompt=prompt, generator=0)
    assert out[0, :L - 1].tolist() == prompt and tr.nfe == 1
    assert generate_ar(env.ar, L, prompt=prompt, generator=0)[0][0, :L - 1].tolist() == prompt
    out, _ = esolm_sample(env.eso, L, MASK, 0.5, prompt=torch.tensor(prompt), generator=0)
    assert out[0, :L - 1].tolist() == prompt
    out, _ = ancestral(env.mdm, L, 3, MASK, prompt=torch.tensor([prompt, prompt]), batch_size=2, generator=0)
    assert out[:, :L - 1].tolist() == [prompt, prompt]


def test_plain_callables_numpy_ids_and_the_edge_thresholds(env):
    toy = lambda x, **kw: torch.randn(*x.shape, V, generator=torch.Generator().manual_seed(0))   # noqa: E731
    assert not (generate(toy, L, 4, np.int64(MASK), generator=0)[0] == MASK).any()     # no config: any mask_id
    assert not (generate(env.mdm, L, 4, np.int64(MASK), generator=0)[0] == MASK).any()
    assert generate_adaptive(env.mdm, L, MASK, threshold=0.0)[1].nfe == 1               # 0: all in one call
    assert generate_adaptive(env.mdm, L, MASK, threshold=1)[1].nfe <= L
    out, _ = generate(env.mdm, L, 3, MASK, eos_id=2, prompt=torch.tensor([1]), generator=0)
    assert not (out == MASK).any()


def test_edit_accepts_row_masks_and_protect(env):
    positions = torch.zeros(L, dtype=torch.bool)
    positions[3:6] = True
    protect = torch.zeros(2, L, dtype=torch.bool)
    protect[:, 4] = True
    new, _, where = edit(env.mdm, text(), MASK, positions=positions, protect=protect, generator=0)
    assert where[:, 4].tolist() == [False, False] and torch.equal(new[~where], text()[~where])


def test_losses_accept_the_edges(env):
    assert torch.isfinite(nelbo(t=1.0)) and torch.isfinite(nelbo(t=torch.tensor([1.0, 1e-4])))
    assert torch.isfinite(discrete(t=torch.tensor([1.0, 0.25]), s=torch.tensor([0.75, 0.0])))
    padded = x0.clone()
    padded[:, -1] = -100                                  # an ignore_id outside the vocabulary is fine
    full = losses.ar_loss(logits4, padded, ignore_id=-100, reduction="sequence")
    assert full.shape == (2,) and torch.isfinite(full).all()
    assert torch.isfinite(losses.llada_loss(logits4, x0, xt, 1.0, MASK))


def test_tokenizers_accept_numpy_and_tensor_ids(env):
    ids = env.char.encode("a cat")
    assert env.char.decode(np.array(ids)) == env.char.decode(torch.tensor(ids)) == "a cat"
    assert env.bpe.decode_batch(torch.tensor([env.bpe.encode("a dog")] * 2)) == ["a dog"] * 2


def test_a_folder_with_an_empty_file_still_loads(tmp_path):
    (tmp_path / "a.txt").write_text("one story.\n")
    (tmp_path / "b.txt").write_bytes(b"")
    assert load_text(tmp_path) == ["one story."]
