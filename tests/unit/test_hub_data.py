"""Hub corpora (``data="hf:..."``): the spec, the on-disk cache, and failing fast offline.
Nothing here reaches the network: tests/conftest.py sets HF_HUB_OFFLINE=1 and HF_DATASETS_OFFLINE=1."""
import json
import os
import time

import pytest
import torch

from minidlm import hub
from minidlm.tokenizer import BPETokenizer, load_tokenizer
from minidlm.train import TrainConfig, train

TINY = dict(model_overrides=dict(d_model=32, n_layer=1, n_head=2), seq_len=32, batch_size=4, steps=2,
            eval_every=0, ckpt_every=0, eval_batches=1, progress=False)
DOCS = [f"Story {i}: the {c} cat sat on the mat and looked at the {d} dog." for i, (c, d) in
        enumerate(zip(["red", "big", "old", "shy"] * 50, ["small", "brown", "kind", "sad"] * 50))]


def test_offline_without_a_cache_fails_at_once(tmp_path):
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"
    t0 = time.time()
    with pytest.raises(RuntimeError, match=r"roneneldan/TinyStories.*HF_HUB_OFFLINE=1 and HF_DATASETS_OFFLINE=1"):
        hub.hub_blocks("hf:roneneldan/TinyStories", 64, cache_dir=tmp_path)
    with pytest.raises(RuntimeError, match="HF_HUB_OFFLINE"):
        train(TrainConfig(data="hf:Skylion007/openwebtext", cache_dir=str(tmp_path), out=str(tmp_path / "run"), **TINY))
    assert time.time() - t0 < 5


@pytest.mark.parametrize("spec", ["hf:", "hf::train", "hf:a/b:train:text:extra", "hf:a/b::text"])
def test_a_bad_spec_names_data(spec):
    with pytest.raises(ValueError, match="data"):
        TrainConfig(data=spec)


def test_spec_defaults():
    assert hub.parse_spec("hf:roneneldan/TinyStories") == ("roneneldan/TinyStories", "train", "text")
    assert hub.parse_spec("hf:a/b:validation") == ("a/b", "validation", "text")
    assert hub.parse_spec("hf:a/b:train:story") == ("a/b", "train", "story")
    with pytest.raises(ValueError, match="hf_max_docs"):
        TrainConfig(data="hf:a/b", hf_max_docs=0)


def test_a_cached_corpus_loads_offline(tmp_path):
    spec = "hf:fake/stories"
    tokens, tok = hub.prepare(spec, iter(DOCS), cache_dir=tmp_path)   # what a cache miss does with the stream
    assert tokens.dtype == torch.int32 and tokens[0] == tok.bos_id
    first = tokens[1:(tokens == tok.eos_id).nonzero()[0, 0]]
    assert tok.decode(first) == DOCS[0]                               # [BOS] doc [EOS] [BOS] doc [EOS] ...
    again, tok2 = hub.load_corpus(spec, cache_dir=tmp_path)          # offline: the cache, tokenizer included
    assert torch.equal(again, tokens) and tok2.vocab_size == tok.vocab_size
    # a rank (or a later run) holding the run folder's copy of the tokenizer finds the same cache
    tok.save(tmp_path / "copy.json")
    assert torch.equal(hub.load_corpus(spec, load_tokenizer(tmp_path / "copy.json"), cache_dir=tmp_path)[0], tokens)
    meta = json.loads(next((hub.corpus_dir(spec, cache_dir=tmp_path)).glob("tokens-*.json")).read_text())
    assert meta["documents"] == len(DOCS) and meta["tokens"] == tokens.numel()
    with pytest.raises(RuntimeError, match="HF_DATASETS_OFFLINE"):  # another key (max_docs) is another corpus
        hub.load_corpus(spec, max_docs=10, cache_dir=tmp_path)

    s = train(TrainConfig(data=spec, cache_dir=str(tmp_path), out=str(tmp_path / "run"), **TINY))
    assert s["steps"] == 2 and (tmp_path / "run" / "tokenizer.json").exists()


def test_a_given_tokenizer_and_max_docs_key_the_cache(tmp_path):
    tok = BPETokenizer.train(DOCS, vocab_size=300)
    tokens, _ = hub.prepare("hf:fake/stories:train:story", iter(DOCS), tok, max_docs=20, cache_dir=tmp_path)
    assert (tokens == tok.bos_id).sum() == 20
    tok.save(tmp_path / "tok.json")
    cfg = TrainConfig(data="hf:fake/stories:train:story", tokenizer=str(tmp_path / "tok.json"), hf_max_docs=20,
                      cache_dir=str(tmp_path), out=str(tmp_path / "run"), **{**TINY, "seq_len": 16})
    assert train(cfg)["steps"] == 2
    with pytest.raises(RuntimeError, match="fake/stories"):          # another tokenizer: not cached
        hub.load_corpus("hf:fake/stories:train:story", BPETokenizer.train(DOCS, vocab_size=290), max_docs=20,
                        cache_dir=tmp_path)


def test_a_local_text_file_still_trains(tmp_path):
    path = tmp_path / "stories.txt"
    path.write_text("\n".join(DOCS * 3), encoding="utf-8")
    s = train(TrainConfig(data=str(path), out=str(tmp_path / "run"), **TINY))
    assert s["steps"] == 2 and load_tokenizer(tmp_path / "run" / "tokenizer.json").mask_id is not None


def test_the_command_line_leaves_the_hub_on_for_hf_data(tmp_path, monkeypatch):
    """``python -m minidlm`` switches the hub off for every command but ``train --data hf:...``."""
    from minidlm.__main__ import main

    hub.prepare("hf:fake/stories", iter(DOCS), cache_dir=tmp_path)
    monkeypatch.setattr(hub, "stream_documents", lambda spec: pytest.fail("the cached corpus was streamed again"))
    for var in hub.OFFLINE_VARS:
        monkeypatch.delenv(var)
    args = ["train", "--data", "hf:fake/stories", "--cache-dir", str(tmp_path), "--steps", "1", "--d-model", "32",
            "--n-layer", "1", "--n-head", "2", "--seq-len", "32", "--batch-size", "4", "--eval-every", "0",
            "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(args) == 0
    assert not any(var in os.environ for var in hub.OFFLINE_VARS)
