"""Pretrained transformers models as minidlm denoisers (minidlm/adapters.py, appendix A1).

Offline: tiny randomly initialized models built from configs (BERT, RoBERTa, ModernBERT) with
tokenizers built here, and fake LLaDA / Dream modules for the remote-code paths."""
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers")

from minidlm.adapters import (KNOWN, HFDenoiser, from_pretrained, resolve_kind,  # noqa: E402
                              wrap_pretrained)
from minidlm.adapters_tokenizer import HFTokenizer  # noqa: E402
from minidlm.editing import edit  # noqa: E402
from minidlm.evaluate import decode_samples  # noqa: E402
from minidlm.sampling import ancestral, generate, generate_adaptive  # noqa: E402

WORDS = "the a cat dog sat on mat ran fast and slow big small red blue ##s ##ed ##ing . ,".split()
TEXTS = ["the cat sat on the mat.", "the dog ran fast, and the cat ran slow.", "a big red dog sat."] * 4


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))


def bert_tokenizer():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    return transformers.BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})


def roberta_tokenizer(**kwargs):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(TEXTS, trainer=trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    merges = json.loads(t.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
    return transformers.RobertaTokenizer(vocab=t.get_vocab(), merges=merges, **kwargs)


TINY = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)


def build(name):
    """A tiny random masked LM from a config and its tokenizer (no download)."""
    torch.manual_seed(0)
    if name == "bert":
        tok = bert_tokenizer()       # +3 rows: checkpoints pad the vocabulary past the tokenizer
        cfg = transformers.BertConfig(vocab_size=len(tok) + 3, max_position_embeddings=24, **TINY)
        return transformers.BertForMaskedLM(cfg), tok
    if name == "roberta":
        tok = roberta_tokenizer()
        cfg = transformers.RobertaConfig(vocab_size=len(tok), max_position_embeddings=26, type_vocab_size=1,
                                         pad_token_id=1, bos_token_id=0, eos_token_id=2, **TINY)
        return transformers.RobertaForMaskedLM(cfg), tok
    tok = bert_tokenizer()
    cfg = transformers.ModernBertConfig(vocab_size=len(tok), max_position_embeddings=32, pad_token_id=0,
                                        bos_token_id=2, eos_token_id=3, cls_token_id=2, sep_token_id=3,
                                        local_attention=8, global_attn_every_n_layers=2,
                                        attn_implementation="sdpa", **TINY)
    return transformers.ModernBertForMaskedLM(cfg), tok


MODELS = ["bert", "roberta", "modernbert"]


@pytest.fixture(params=MODELS)
def pair(request):
    model, hf_tok = build(request.param)
    den, tok = wrap_pretrained(model, hf_tok)
    return SimpleNamespace(name=request.param, model=model, hf=hf_tok, den=den, tok=tok)


def text_ids(p, n: int = 3):
    """(n, L) rows [CLS] text [SEP] padded with [PAD] after the [SEP]."""
    rows = [p.tok.encode(t, add_special=True) for t in TEXTS[:n]]
    L = max(map(len, rows))
    return torch.tensor([r + [p.tok.pad_id] * (L - len(r)) for r in rows])


def allowed_ids(p):
    return (~p.den.forbidden).nonzero().flatten()


def random_state(p, B=2, L=9, seed=0):
    """[CLS] then random allowed ids with some [MASK]s: what a sampler feeds the model."""
    g = torch.Generator().manual_seed(seed)
    ok = allowed_ids(p)
    ok = ok[ok != p.tok.eos_id]
    x = ok[torch.randint(len(ok), (B, L), generator=g)]
    x[torch.rand(B, L, generator=g) < 0.4] = p.tok.mask_id
    x[:, 0] = p.tok.bos_id
    return x


# ---------------------------------------------------------------- logits, framing, specials
def test_logits_equal_the_raw_model_on_cls_text_sep(pair):
    x = random_state(pair)                                                   # (B, L)
    sep = torch.full((x.shape[0], 1), pair.tok.eos_id)
    raw = pair.model(input_ids=torch.cat([x, sep], 1)).logits[:, :-1]        # (B, L, V) [CLS] ... [SEP]
    got = pair.den(x)
    assert got.shape == raw.shape and got.dtype == torch.float32
    forbid = pair.den.forbidden
    assert torch.equal(got[..., ~forbid], raw[..., ~forbid])
    assert bool(torch.isneginf(got[..., forbid]).all())


def test_padding_is_hidden_and_a_closed_row_gets_no_second_sep(pair):
    x = text_ids(pair)                                                       # (3, L) [CLS] .. [SEP] [PAD]*
    attn = (x != pair.tok.pad_id).long()
    closed = torch.cat([x, torch.full((3, 1), pair.tok.pad_id)], 1)          # the adapter's input
    raw = pair.model(input_ids=closed, attention_mask=torch.cat([attn, torch.zeros(3, 1).long()], 1)).logits
    allowed = ~pair.den.forbidden
    assert torch.equal(pair.den(x)[..., allowed], raw[:, :-1][..., allowed])
    # the longest row ends with [SEP] and has no padding: the adapter adds nothing it can see
    full = int(attn.sum(1).argmax())
    row = x[full:full + 1]
    plain = pair.model(input_ids=row).logits
    torch.testing.assert_close(pair.den(row)[..., allowed], plain[..., allowed], rtol=1e-5, atol=1e-5)


def test_mask_id_and_special_tokens(pair):
    hf, tok, cfg = pair.hf, pair.tok, pair.den.config
    assert tok.mask_id == cfg.mask_id == hf.mask_token_id
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (hf.cls_token_id, hf.sep_token_id, hf.pad_token_id)
    assert cfg.vocab_size == pair.model.get_output_embeddings().weight.shape[0]
    forbidden = set(pair.den.forbidden.nonzero().flatten().tolist())
    expected = (set(hf.all_special_ids) - {hf.sep_token_id}) | set(range(len(hf), cfg.vocab_size))
    assert forbidden == expected and hf.sep_token_id not in forbidden
    assert tok.special_ids >= {tok.bos_id, tok.eos_id, tok.mask_id, tok.pad_id}


def test_max_len_is_the_position_limit_minus_the_sep(pair):
    cfg = pair.model.config
    limit = {"bert": cfg.max_position_embeddings, "roberta": cfg.max_position_embeddings - cfg.pad_token_id - 1,
             "modernbert": cfg.max_position_embeddings}[pair.name]
    assert pair.den.config.max_len == limit - 1
    x = random_state(pair, B=1, L=pair.den.config.max_len)
    assert pair.den(x).shape[1] == pair.den.config.max_len                   # the longest input runs
    with pytest.raises(ValueError, match="length"):
        generate(pair.den, pair.den.config.max_len + 1, 2, pair.tok.mask_id)


def test_bad_inputs_name_idx():
    model, hf = build("bert")
    den, _ = wrap_pretrained(model, hf)
    V, L = den.config.vocab_size, den.config.max_len
    for bad in (torch.zeros(1, 4), torch.zeros(4, dtype=torch.long), torch.full((1, 4), V),
                torch.full((1, 4), -1), torch.zeros(1, L + 1, dtype=torch.long), torch.zeros(1, 0, dtype=torch.long)):
        with pytest.raises(ValueError, match="^idx"):
            den(bad)
    with pytest.raises(ValueError, match="mask_id"):
        generate(den, 8, 2, mask_id=den.config.mask_id + 1)


def test_no_gradients_and_eval_mode():
    model, hf = build("bert")
    den, _ = wrap_pretrained(model, hf)
    den.train()
    assert not den.training and not model.training                         # dropout stays off
    assert not den(torch.tensor([[2, 5, 4]])).requires_grad


# ---------------------------------------------------------------- every sampler on the adapter
def _check_run(p, out, tr, fixed: torch.Tensor):
    """Output = trace's final state, fixed positions unchanged, no [MASK] left, no forbidden id."""
    assert torch.equal(tr.final, out.cpu())
    assert torch.equal(out[fixed], tr.states[0][fixed])
    assert not bool((out == p.tok.mask_id).any())
    assert not bool(p.den.forbidden[out[~fixed]].any())


def test_every_sampler_runs_and_keeps_the_prompt(pair):
    mask_id, prompt = pair.tok.mask_id, torch.tensor([pair.tok.bos_id, pair.tok.encode("the")[0]])
    L, B = 12, 3
    fixed = torch.zeros(B, L, dtype=torch.bool)
    fixed[:, :2] = True
    runs = [generate(pair.den, L, 5, mask_id, batch_size=B, prompt=prompt, remasking=r, generator=1)
            for r in ("random", "low_confidence", "entropy")]
    runs.append(generate(pair.den, L, 5, mask_id, batch_size=B, prompt=prompt, eos_id=pair.tok.eos_id, generator=2))
    runs.append(generate(pair.den, L, 10, mask_id, batch_size=B, prompt=prompt, block_length=5, generator=3))
    runs.append(ancestral(pair.den, L, 8, mask_id, batch_size=B, prompt=prompt, generator=4))
    runs.append(generate_adaptive(pair.den, L, mask_id, threshold=0.5, batch_size=B, prompt=prompt, generator=5))
    for out, tr in runs:
        _check_run(pair, out, tr, fixed)
        for k in range(tr.steps + 1):
            assert torch.equal(tr.state_at(k), tr.states[k])
    texts = decode_samples(pair.tok, runs[0][0])
    assert len(texts) == B and all(isinstance(t, str) for t in texts)


def test_edit_changes_only_the_edited_positions(pair):
    x = text_ids(pair, 2)
    out, tr, where = edit(pair.den, x, pair.tok.mask_id, span=(1, 3), generator=0)
    _check_run(pair, out, tr, ~where)
    assert torch.equal(out[:, 3:], x[:, 3:]) and torch.equal(out[:, :1], x[:, :1])
    protect = torch.zeros_like(x, dtype=torch.bool)
    protect[:, 0] = True
    out, tr, where = edit(pair.den, x, pair.tok.mask_id, k_least_confident=2, protect=protect, generator=0)
    assert int(where.sum()) == 4 and not bool(where[:, 0].any())
    _check_run(pair, out, tr, ~where)


def test_denoising_player_builds_on_the_adapter():
    pytest.importorskip("ipywidgets")
    from minidlm.viz import denoising_player

    model, hf = build("roberta")
    den, tok = wrap_pretrained(model, hf)
    box = denoising_player(den, tok, steps=4, length=10, seed=0)
    player = box.player
    assert player.trace.final.shape == (1, 10) and player.trace.final[0, 0] == tok.bos_id
    for step in (0, player.trace.steps):
        player.show_step(step)
        assert "mdlm-card" in player.html.value


# ---------------------------------------------------------------- the tokenizer wrapper
@pytest.mark.parametrize("name", ["bert", "roberta"])
def test_tokenizer_round_trip_and_pieces(name):
    tok = HFTokenizer(build(name)[1])
    text = "the cats sat on the mat."
    ids = tok.encode(text, add_special=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id and tok.bos_id not in ids[1:-1]
    assert tok.decode(ids[1:-1]) == text and tok.decode(ids, skip_special=True) == text
    pieces = tok.token_strings(ids)
    assert len(pieces) == len(ids)
    assert "".join(pieces) == tok.hf.decode(ids, clean_up_tokenization_spaces=False)
    if name == "bert":                                                      # "cats" = cat ##s: one word
        assert pieces[2:4] == [" cat", "s"]
    assert tok.id_to_token(tok.mask_id) == tok.hf.mask_token
    with pytest.raises(ValueError, match="ids"):
        tok.decode([tok.vocab_size])


def test_tokenizer_without_mask_token_needs_a_mask_id():
    hf = build("bert")[1]
    hf.mask_token = None
    with pytest.raises(ValueError, match="mask_id"):
        HFTokenizer(hf)
    assert HFTokenizer(hf, mask_id=4).mask_id == 4


# ---------------------------------------------------------------- LLaDA / Dream (fake modules)
class FakeDiffusionLM(nn.Module):
    """Stands in for LLaDA / Dream's remote code: input_ids -> an object with .logits (B, L, V) that
    depends on the position and the token, so a shift by one position shows."""

    def __init__(self, V, model_type, mask_token_id=None, max_len=64):
        super().__init__()
        self.config = SimpleNamespace(vocab_size=V, model_type=model_type, max_position_embeddings=max_len,
                                      mask_token_id=mask_token_id)
        self.pos = nn.Parameter(torch.randn(max_len, V, generator=torch.Generator().manual_seed(0)))

    def forward(self, input_ids, attention_mask=None):
        assert attention_mask is None                                       # LLaDA / Dream: full attention
        L = input_ids.shape[1]
        onehot = torch.nn.functional.one_hot(input_ids, self.pos.shape[1]).float()
        return SimpleNamespace(logits=self.pos[:L] + 3 * onehot.roll(1, dims=-1))


@pytest.mark.parametrize("kind", ["llada", "dream"])
def test_diffusion_lm_mask_id_and_shift(kind):
    mask_id = KNOWN[kind]["mask_id"]
    fake = FakeDiffusionLM(mask_id + 200, "llada" if kind == "llada" else "Dream", mask_token_id=mask_id)
    den, tok = wrap_pretrained(fake, roberta_tokenizer(), kind="auto")
    assert den.config.kind == kind and den.config.mask_id == tok.mask_id == mask_id     # not the <mask> = 4
    assert den.config.shift_logits == (kind == "dream") and den.config.max_len == 64
    assert den.config.close_id is None
    x = torch.tensor([[0, 7, mask_id, 9, mask_id, 12], [0, mask_id, 8, mask_id, 30, 2]])
    raw = fake(x).logits
    if kind == "dream":                                                    # output at l - 1 predicts l
        raw = torch.cat([raw[:, :1], raw[:, :-1]], 1)
    got = den(x)
    allowed = ~den.forbidden
    assert torch.equal(got[..., allowed], raw[..., allowed])
    assert set(den.forbidden.nonzero().flatten().tolist()) == {mask_id} | set(range(tok.vocab_size, mask_id + 200))
    out, tr = generate(den, 10, 4, mask_id, prompt=torch.tensor([0, 7]), generator=0)
    assert torch.equal(out[:, :2], torch.tensor([[0, 7]])) and torch.equal(tr.final, out)


def test_llada_mask_id_defaults_to_126336_when_nothing_says_otherwise():
    hf = roberta_tokenizer()
    hf.mask_token = None
    fake = FakeDiffusionLM(126464, "llada")
    den, tok = wrap_pretrained(fake, hf)
    assert den.config.mask_id == tok.mask_id == 126336 and not den.config.shift_logits


def test_resolve_kind():
    assert resolve_kind({"model_type": "llada"}) == "llada"
    assert resolve_kind({"model_type": "Dream"}) == "dream"
    assert resolve_kind({"model_type": "bert", "architectures": ["BertForMaskedLM"]}) == "masked_lm"
    assert resolve_kind({"model_type": "mything", "architectures": ["MyThingForMaskedLM"]}) == "masked_lm"
    with pytest.raises(ValueError, match="kind"):
        resolve_kind({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})


# ---------------------------------------------------------------- from_pretrained
@pytest.mark.parametrize("name", ["bert", "roberta"])
def test_from_pretrained_on_a_saved_folder(name, tmp_path):
    model, hf = build(name)
    model.save_pretrained(tmp_path)
    hf.save_pretrained(tmp_path)
    den, tok = wrap_pretrained(model, hf)
    den2, tok2 = from_pretrained(tmp_path, device="cpu")
    assert isinstance(den2, HFDenoiser) and den2.config == den.config
    assert (tok2.mask_id, tok2.bos_id, tok2.eos_id, tok2.pad_id) == (tok.mask_id, tok.bos_id, tok.eos_id, tok.pad_id)
    assert tok2.encode(TEXTS[1]) == tok.encode(TEXTS[1])
    x = torch.tensor([[tok.bos_id, *tok.encode("the cat"), tok.mask_id, tok.mask_id]])
    assert torch.equal(den2(x), den(x))
    den16, _ = from_pretrained(tmp_path, device="cpu", dtype=torch.bfloat16)
    assert den16.dtype == torch.bfloat16 and den16(x).dtype == torch.float32   # samplers get float logits
    torch.testing.assert_close(den16(x)[..., ~den.forbidden], den(x)[..., ~den.forbidden], atol=0.1, rtol=0.1)


def test_a_hub_id_offline_without_a_cache_is_one_clear_line():
    with pytest.raises(OSError) as err:
        from_pretrained("GSAI-ML/LLaDA-8B-Instruct", trust_remote_code=True, device="cpu")
    msg = str(err.value)
    assert "GSAI-ML/LLaDA-8B-Instruct" in msg and "HF_HUB_OFFLINE" in msg and "\n" not in msg


def test_remote_code_needs_trust_remote_code(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llada", "architectures": ["LLaDAModelLM"]}))
    with pytest.raises(ValueError, match="trust_remote_code"):
        from_pretrained(tmp_path, device="cpu")
    with pytest.raises(ValueError, match="kind"):
        from_pretrained(tmp_path, kind="gpt", device="cpu")


def test_transformers_is_imported_lazily(monkeypatch):
    code = "import sys, minidlm.adapters, minidlm.sampling; print('transformers' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"
    monkeypatch.setitem(sys.modules, "transformers", None)                # as if not installed
    with pytest.raises(ImportError, match=r"\.\[hub\]"):
        from_pretrained("bert-base-uncased", device="cpu")


# ---------------------------------------------------------------- the tiny stand-ins (adapters_tiny.py)
@pytest.mark.parametrize("kind", ["bert", "roberta", "modernbert"])
def test_tiny_random_masked_lm_is_a_reproducible_offline_stand_in(kind, tmp_path):
    from minidlm.adapters_tiny import tiny_random_masked_lm

    before = torch.random.get_rng_state()
    den, tok = tiny_random_masked_lm(kind, seed=1, max_len=40)
    assert torch.equal(torch.random.get_rng_state(), before)                # the global RNG is left alone
    assert isinstance(den, HFDenoiser) and isinstance(tok, HFTokenizer) and den.config.max_len == 40
    text = "Once upon a time, Zoe xylophoned!"                               # words the vocabulary lacks
    ids = tok.encode(text, add_special=True)
    assert tok.unk_id not in ids and ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    want = text.lower() if kind != "roberta" else text                       # the BERT tokenizer lowercases
    assert tok.decode(ids, skip_special=True).replace(" ,", ",").replace(" !", "!") == want
    x = torch.tensor([ids[:-1] + [tok.mask_id] * (40 - len(ids) + 1)])       # (1, 40): the longest row
    assert den(x).shape == (1, 40, den.config.vocab_size)
    with pytest.raises(ValueError, match="length"):
        den(torch.cat([x, x[:, :1]], 1))
    again, _ = tiny_random_masked_lm(kind, seed=1, max_len=40)
    other, _ = tiny_random_masked_lm(kind, seed=2, max_len=40)
    assert torch.equal(again(x), den(x)) and not torch.equal(other(x), den(x))
    den.model.save_pretrained(tmp_path)                                      # the real-checkpoint path
    tok.hf.save_pretrained(tmp_path)
    loaded, tok2 = from_pretrained(tmp_path, device="cpu")
    assert loaded.config == den.config and tok2.encode(text) == tok.encode(text)
    assert torch.equal(loaded(x), den(x))
    with pytest.raises(ValueError, match="^kind"):
        tiny_random_masked_lm("gpt2")
