"""AR-to-diffusion adaptation (lesson 14): init_from, attention annealing, the AR shift."""
import json

import pytest
import torch

import minidlm.train as train_mod
from minidlm.__main__ import main
from minidlm.adapt import anneal_mask, init_from_checkpoint
from minidlm.checkpoint import load_model, save_checkpoint
from minidlm.data import DATA_DIR, load_tales_tokenizer
from minidlm.model import Model, ModelConfig
from minidlm.sampling import generate
from minidlm.train import TrainConfig, build_model, compute_loss, train

TINY = dict(model_overrides=dict(d_model=32, n_layer=2, n_head=2), batch_size=8, progress=False)
TINY_ARGS = ["--d-model", "32", "--n-layer", "2", "--n-head", "2", "--batch-size", "8", "--no-progress"]


def _losses(path):
    return [r["loss"] for r in map(json.loads, open(path / "log.jsonl")) if "loss" in r]


def _tiny_cfg(**kw):
    return ModelConfig(vocab_size=50, max_len=16, n_layer=2, n_head=2, d_model=32, mask_id=49, **kw)


@pytest.fixture(scope="module")
def ar_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ar")
    train(TrainConfig(objective="ar", steps=3, eval_every=0, ckpt_every=0, out=str(out), **TINY))
    return out


def test_fresh_run_starts_from_the_ar_weights(ar_run, tmp_path, monkeypatch):
    seen = {}

    def spy(model, init_from, tok=None):               # the weights right after the init, before any step
        out = init_from_checkpoint(model, init_from, tok)
        seen["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return out

    monkeypatch.setattr(train_mod, "init_from_checkpoint", spy)
    cfg = TrainConfig(objective="mdm", steps=1, eval_every=0, ckpt_every=0, out=str(tmp_path),
                      init_from=ar_run, **TINY)
    train(cfg)
    ar, _ = load_model(ar_run)
    assert ar.config.mask_id is None
    ref = ar.state_dict()
    assert seen["state"].keys() == ref.keys()
    for k, v in ref.items():
        assert torch.equal(seen["state"][k], v), k
    ck = json.loads((tmp_path / "last.json").read_text())
    assert ck["train_state"]["train_config"]["init_from"] == str(ar_run)    # a card can show it
    assert ck["model_config"]["mask_id"] is not None


def test_init_from_a_shipped_ar_checkpoint_copies_every_tensor():
    tok = load_tales_tokenizer("bpe")
    model = build_model(TrainConfig(objective="esolm"), tok)      # max_len 2 x seq_len: RoPE has no table
    src = DATA_DIR / "checkpoints" / "tales-ar-nano"
    init_from_checkpoint(model, src, tok)
    ar, _ = load_model(src)
    for k, v in ar.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_mismatched_architecture_or_vocabulary_refuses(ar_run, tmp_path):
    other = dict(TINY, model_overrides=dict(d_model=64, n_layer=2, n_head=2))
    with pytest.raises(ValueError, match="init_from.*d_model"):
        train(TrainConfig(objective="mdm", steps=1, out=str(tmp_path / "a"), init_from=str(ar_run), **other))
    ar, _ = load_model(ar_run)
    bigger = Model(ModelConfig.from_dict({**ar.config.to_dict(), "vocab_size": ar.config.vocab_size + 1,
                                          "mask_id": ar.config.vocab_size}))
    with pytest.raises(ValueError, match="init_from.*vocab_size"):
        init_from_checkpoint(bigger, ar_run)

    class OtherTokens:                                           # same size, other tokens
        vocab_size = ar.config.vocab_size

        def id_to_token(self, i):
            return f"t{i}"

    same = Model(ModelConfig.from_dict({**ar.config.to_dict(), "mask_id": 4}))
    with pytest.raises(ValueError, match="init_from.*vocabulary"):
        init_from_checkpoint(same, ar_run, OtherTokens())
    with pytest.raises(ValueError, match="init_from"):
        init_from_checkpoint(same, tmp_path / "nothing-here")


def test_anneal_mask_goes_from_causal_to_bidirectional():
    L = 24
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    assert torch.equal(anneal_mask(0, 10, L, torch.Generator().manual_seed(0)), causal)
    mid = anneal_mask(5, 10, L, torch.Generator().manual_seed(0))
    assert (mid | causal).equal(mid) and not mid.equal(causal)
    future = mid[~causal].float().mean().item()
    assert 0.35 < future < 0.65                                  # p = 5 / 10
    assert torch.equal(mid, anneal_mask(5, 10, L, torch.Generator().manual_seed(0)))   # seeded
    assert anneal_mask(10, 10, L) is None and anneal_mask(0, 0, L) is None
    with pytest.raises(ValueError, match="anneal_steps"):
        anneal_mask(0, -1, L)
    with pytest.raises(ValueError, match="anneal_steps"):
        TrainConfig(objective="ar", anneal_steps=5)


def test_annealed_loss_is_the_plain_loss_once_annealing_ends():
    tok = load_tales_tokenizer("bpe")
    torch.manual_seed(0)
    on = TrainConfig(objective="mdm", seq_len=16, anneal_steps=8, **TINY)
    off = TrainConfig(objective="mdm", seq_len=16, **TINY)
    model = build_model(off, tok)
    x0 = torch.randint(0, tok.mask_id, (4, 16))
    x0[:, 0] = tok.bos_id
    loss = lambda cfg, step: compute_loss(model, x0, cfg, tok.mask_id, torch.Generator().manual_seed(3),  # noqa: E731
                                          step=step).item()
    assert loss(on, 8) == loss(off, 8) and loss(on, 100) == loss(off, 100)
    assert loss(on, 0) != loss(off, 0)                              # step 0 is causal: another loss
    assert loss(on, None) == loss(off, None)                        # evaluation: bidirectional


def test_annealing_keeps_resume_exact(tmp_path):
    kw = dict(objective="mdm", steps=40, eval_every=20, ckpt_every=20, anneal_steps=30, **TINY)
    train(TrainConfig(out=str(tmp_path / "a"), **kw))
    train(TrainConfig(out=str(tmp_path / "b"), max_seconds=0.0, **kw))    # stops after its first step
    assert len(_losses(tmp_path / "b")) == 0
    train(TrainConfig(out=str(tmp_path / "b"), resume=True, **kw))
    assert _losses(tmp_path / "b") == _losses(tmp_path / "a")
    off = TrainConfig(objective="mdm", steps=40, eval_every=20, ckpt_every=20, out=str(tmp_path / "c"), **TINY)
    train(off)
    assert _losses(tmp_path / "c")[:2] != _losses(tmp_path / "a")[:2]  # annealing changed the run


def test_shifted_model_returns_the_head_one_place_left():
    torch.manual_seed(0)
    plain = Model(_tiny_cfg()).eval()
    shifted = Model(_tiny_cfg(shift_logits=True)).eval()
    shifted.load_state_dict(plain.state_dict())
    x = torch.randint(0, 49, (3, 12))
    a, b = plain(x), shifted(x)                                          # (B, L, V)
    assert torch.equal(b[:, 1:], a[:, :-1]) and torch.equal(b[:, 0], a[:, 0])
    mask = torch.ones(12, 12, dtype=torch.bool).tril()
    assert torch.equal(shifted(x, attn_mask=mask)[:, 1:], plain(x, attn_mask=mask)[:, :-1])
    for kw in (dict(is_causal=True), dict(cache=shifted.new_cache(3)), dict(positions=torch.arange(12))):
        with pytest.raises(ValueError, match="shift_logits"):
            shifted(x, **kw)
    with pytest.raises(ValueError, match="shift_logits"):
        ModelConfig(vocab_size=50, max_len=16, n_layer=1, n_head=2, d_model=32, shift_logits=True)
    for objective in ("ar", "esolm"):
        with pytest.raises(ValueError, match="shift_logits"):
            TrainConfig(objective=objective, model_overrides={"shift_logits": True})


def test_shift_flag_survives_a_checkpoint_and_old_configs_load_unshifted(tmp_path):
    cfg = _tiny_cfg(shift_logits=True)
    model = Model(cfg)
    save_checkpoint(tmp_path, model, model_config=cfg.to_dict())
    loaded, _ = load_model(tmp_path)
    assert loaded.config.shift_logits is True
    x, _ = generate(loaded, 12, 4, 49, batch_size=2, prompt=torch.tensor([0]), generator=0)
    assert x.shape == (2, 12) and not (x == 49).any()
    old = _tiny_cfg().to_dict()
    assert "shift_logits" not in old                                     # unshifted dicts are unchanged
    assert ModelConfig.from_dict(old).shift_logits is False


def test_command_line_adapts_an_ar_model(tmp_path, capsys, monkeypatch):
    ar, mdm = tmp_path / "ar", tmp_path / "mdm"
    assert main(["train", "--objective", "ar", "--steps", "4", "--eval-every", "0", "--ckpt-every", "0",
                 "--out", str(ar)] + TINY_ARGS) == 0
    args = ["train", "--objective", "mdm", "--steps", "6", "--eval-every", "3", "--ckpt-every", "3", "--out", str(mdm),
            "--init-from", str(ar), "--shift-logits", "--anneal-steps", "4"] + TINY_ARGS
    assert main(args) == 0
    ck = json.loads((mdm / "last.json").read_text())
    assert ck["model_config"]["shift_logits"] is True
    assert ck["train_state"]["train_config"]["init_from"] == str(ar)
    assert ck["train_state"]["train_config"]["anneal_steps"] == 4
    assert main(["sample", "--ckpt", str(mdm), "--strategy", "low_confidence", "--n", "1", "--steps", "8",
                 "--length", "16", "--seed", "0"]) == 0

    def never(*a, **k):
        raise AssertionError("init_from applied on a resumed run")

    monkeypatch.setattr(train_mod, "init_from_checkpoint", never)        # --resume with a checkpoint wins
    capsys.readouterr()
    assert main(args[:4] + ["8"] + args[5:] + ["--resume"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 8
