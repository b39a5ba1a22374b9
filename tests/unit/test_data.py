import socket
from pathlib import Path

import pytest
import torch

from minidlm import data
from minidlm.data import (batch_at, iterate_batches, load_tales, load_text, pack_blocks,
                          pad_documents, tales_blocks, train_val_split)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails loudly."""
    def refuse(*a, **k):
        raise OSError("network is unreachable (test)")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def test_load_text_file_and_folder_offline(tmp_path, no_network):
    (tmp_path / "a.txt").write_text("first story.\n\nsecond story.\n", encoding="utf-8")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.txt").write_text("third one.\n", encoding="utf-8")
    (sub / "ignored.md").write_text("not text\n")
    assert load_text(tmp_path / "a.txt") == ["first story.", "second story."]
    assert sorted(load_text(tmp_path)) == ["first story.", "second story.", "third one."]
    assert len(load_text(tmp_path, sample_by="document")) == 2


def test_load_text_without_datasets_falls_back(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name == "datasets":
            raise ImportError("no datasets here")
        return real_import(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    (tmp_path / "a.txt").write_text("x y\nz\n")
    assert load_text(tmp_path / "a.txt") == ["x y", "z"]


def test_empty_or_missing_corpus(tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n  \n")
    with pytest.raises(ValueError, match="empty"):
        load_text(tmp_path / "empty.txt")
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError, match="no"):
        load_text(tmp_path / "d")
    with pytest.raises(FileNotFoundError):
        load_text(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="sample_by"):
        load_text(tmp_path / "empty.txt", sample_by="word")


def test_pack_blocks_is_the_concatenated_stream():
    docs = [[5, 6, 7], [8], [9, 10, 11, 12]]
    x = pack_blocks(docs, L=4, bos_id=1, eos_id=2)
    stream = [1, 5, 6, 7, 2, 1, 8, 2, 1, 9, 10, 11, 12, 2]
    assert x.shape == (3, 4) and x.dtype == torch.long
    assert x.flatten().tolist() == stream[:12]
    with pytest.raises(ValueError, match="L"):
        pack_blocks(docs, L=1, bos_id=1, eos_id=2)


def test_pad_documents_one_story_per_row():
    x = pad_documents([[5, 6], [7, 8, 9]], L=6, bos_id=1, eos_id=2)
    assert x.tolist() == [[1, 5, 6, 2, 2, 2], [1, 7, 8, 9, 2, 2]]
    with pytest.raises(ValueError, match="docs"):
        pad_documents([[5] * 10], L=6, bos_id=1, eos_id=2)
    assert pad_documents([[5] * 10, [6]], L=6, bos_id=1, eos_id=2, too_long="skip").shape == (1, 6)
    assert pad_documents([[5] * 10], L=6, bos_id=1, eos_id=2, too_long="truncate").tolist() == [[1, 5, 5, 5, 5, 5]]


def test_split_is_a_partition():
    x = torch.arange(100).view(50, 2)
    tr, va = train_val_split(x, 0.1, seed=3)
    assert len(tr) == 45 and len(va) == 5
    rows = sorted(map(tuple, torch.cat([tr, va]).tolist()))
    assert rows == sorted(map(tuple, x.tolist()))
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(x, 1.5)


def test_batches_are_deterministic_and_cover_each_epoch():
    x = torch.arange(40).view(20, 2)
    seen = torch.cat([batch_at(x, s, 5, seed=1) for s in range(4)])       # one epoch
    assert sorted(seen[:, 0].tolist()) == list(range(0, 40, 2))
    assert torch.equal(batch_at(x, 7, 5, seed=1), batch_at(x, 7, 5, seed=1))
    it = list(iterate_batches(x, 5, seed=1, start_step=2, steps=3))
    assert all(torch.equal(a, batch_at(x, 2 + i, 5, seed=1)) for i, a in enumerate(it))
    with pytest.raises(ValueError, match="batch_size"):
        batch_at(x, 0, 21)


def test_shipped_corpus_and_tokenizer():
    stories = load_tales()
    assert len(stories) >= 5000 and len(set(stories)) == len(stories)
    assert sum(len(s) for s in stories) >= 1_000_000
    train, val = tales_blocks(L=64)
    assert train.shape[1] == 64 and len(train) + len(val) == len(stories), "every story fits one row"
    tok = data.load_tales_tokenizer()
    assert (train[:, 0] == tok.bos_id).all()
    assert (train[:, -1] == tok.eos_id).all(), "rows end with [EOS] padding"
    assert not (train == tok.mask_id).any()


def test_data_folder_is_small_and_regenerates_exactly(tmp_path):
    def size(folder):
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    # a clone stays light: each shipped tiny model (bf16 weights, card, tokenizer) under 2 MB, the
    # models and the corpus under 12 MB in all (today five models, 9 MB, and the 2.1 MB corpus)
    ckpts = [d for d in (ROOT / "data" / "checkpoints").iterdir() if d.is_dir()]
    assert all(size(d) < 2_000_000 for d in ckpts), {d.name: size(d) for d in ckpts}
    assert size(ROOT / "data") < 12_000_000
    import importlib.util
    spec = importlib.util.spec_from_file_location("build", ROOT / "data" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    build.build(tmp_path)
    for f in ("tiny_tales.txt", "tokenizers/tales_bpe.json", "tokenizers/tales_char.json"):
        assert (tmp_path / f).read_bytes() == (ROOT / "data" / f).read_bytes(), f"{f} differs from a fresh build"


def test_shipped_tales_blocks_equal_tales_blocks_and_hand_out_copies():
    from minidlm.data import load_tales_tokenizer, shipped_tales_blocks, tales_blocks
    train, val, tok = shipped_tales_blocks(32, seed=3)
    ref_train, ref_val = tales_blocks(load_tales_tokenizer("bpe"), L=32, seed=3)
    assert torch.equal(train, ref_train) and torch.equal(val, ref_val) and tok.vocab_size > 0
    train[:] = -1                                   # a caller that writes into its batch tensor...
    again, _, _ = shipped_tales_blocks(32, seed=3)
    assert torch.equal(again, ref_train)            # ...does not change the next caller's data
    other, _, _ = shipped_tales_blocks(32, seed=4)  # another seed, another split
    assert not torch.equal(other, ref_train)
