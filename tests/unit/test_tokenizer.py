import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidlm.data import load_tales_tokenizer
from minidlm.tokenizer import SPECIAL_TOKENS, BPETokenizer, CharTokenizer, load_tokenizer

TEXTS = ["Once upon a time, Mia met a cat.", "The dog ran to the park!", "Tom was happy."] * 20


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.train(TEXTS, vocab_size=300)


def test_special_tokens_have_distinct_ids(bpe):
    for tok in (bpe, CharTokenizer.from_texts(TEXTS)):
        ids = [tok.pad_id, tok.bos_id, tok.eos_id, tok.mask_id, tok.unk_id]
        assert len(set(ids)) == 5 and all(0 <= i < tok.vocab_size for i in ids)
        assert tok.id_to_token(tok.mask_id) == "[MASK]"


_BPE = {}


@settings(deadline=None, max_examples=60)
@given(st.text())
def test_bpe_round_trips_any_text(text):
    tok = _BPE.get("tok") or _BPE.setdefault("tok", BPETokenizer.train(TEXTS, vocab_size=300))
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode(text, add_special=True)) == "[BOS]" + text + "[EOS]"
    if "[" not in text:  # no literal special-token strings inside
        assert tok.decode(tok.encode(text, add_special=True), skip_special=True) == text


@settings(deadline=None, max_examples=60)
@given(st.text(alphabet="abcdefgh ,.!\n"))
def test_char_round_trips(text):
    tok = CharTokenizer.from_texts(["abcdefgh ,.!\n"])
    assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode(text)) == len(text)


def test_char_unknown_becomes_unk():
    tok = CharTokenizer.from_texts(["ab"])
    assert tok.encode("az") == [tok.stoi["a"], tok.unk_id]


def test_save_load_round_trip(tmp_path, bpe):
    c = CharTokenizer.from_texts(TEXTS)
    for tok, name in ((bpe, "bpe.json"), (c, "char.json")):
        tok.save(tmp_path / name)
        back = load_tokenizer(tmp_path / name)
        assert type(back) is type(tok) and back.vocab_size == tok.vocab_size
        for text in TEXTS[:3]:
            assert back.encode(text) == tok.encode(text)


def test_shipped_tokenizer_makes_one_token_per_word():
    from minidlm.tales import generate_tales, pieces
    tok = load_tales_tokenizer("bpe")
    assert tok.vocab_size <= 1024
    for story in generate_tales(200, seed=5):
        assert len(tok.encode(story)) == len(pieces(story))
        assert tok.decode(tok.encode(story)) == story


def test_tokenizer_without_mask_is_refused(tmp_path, bpe):
    data = json.loads(bpe.hf.to_str())
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] != "[MASK]"]
    del data["model"]["vocab"]["[MASK]"]
    (tmp_path / "nomask.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        load_tokenizer(tmp_path / "nomask.json")
    (tmp_path / "c.json").write_text(json.dumps({"type": "minidlm-char", "chars": ["a"]}))
    assert load_tokenizer(tmp_path / "c.json").mask_id == SPECIAL_TOKENS.index("[MASK]")


def test_bad_inputs(tmp_path, bpe):
    with pytest.raises(ValueError, match="texts"):
        BPETokenizer.train([], vocab_size=300)
    with pytest.raises(ValueError, match="texts"):
        CharTokenizer.from_texts(["", ""])
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer.train(TEXTS, vocab_size=10)
    with pytest.raises(ValueError, match="text"):
        bpe.encode(42)
    with pytest.raises(ValueError, match="ids"):
        bpe.decode([0, 10**6])
    (tmp_path / "junk.json").write_bytes(b"\x80\x81 not json")
    with pytest.raises(ValueError, match="path"):
        load_tokenizer(tmp_path / "junk.json")
    with pytest.raises(FileNotFoundError):
        load_tokenizer(tmp_path / "missing.json")
