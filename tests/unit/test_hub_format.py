"""minidlm models in the Hugging Face Hub layout (appendix A1): save -> load round trips that sample identical
tokens, the model card, load_model / the CLI on an exported folder, a Hub id read offline from a hand-made cache,
and one-line errors. Nothing reaches the network: HF_HUB_OFFLINE=1 and a tmp HF_HOME in every test."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open

from minidlm import hub_format
from minidlm.__main__ import main
from minidlm.checkpoint import load_model
from minidlm.hub_format import HubModel, export_checkpoint, load_pretrained, save_pretrained
from minidlm.model import Model, ModelConfig
from minidlm.sampling import ancestral, generate
from minidlm.tokenizer import CharTokenizer, load_tokenizer

REPO = Path(__file__).resolve().parents[2]
MDM = REPO / "data" / "checkpoints" / "tales-mdm-nano"
HEX = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The shipped MDM exported once for the module: (folder, original model, its info)."""
    out = export_checkpoint(MDM, tmp_path_factory.mktemp("hub") / "tales-mdm-nano")
    model, info = load_model(MDM)
    return out, model, info


def tiny(tie=True, seed=0):
    tok = CharTokenizer("abcdefgh ")
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=tok.vocab_size, max_len=16, n_layer=1, n_head=2, d_model=16, mask_id=tok.mask_id,
                      tie_embeddings=tie)
    return Model(cfg).eval(), tok


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def samples(model, mask_id, bos_id, seed=7):
    """Tokens from two samplers with a fixed seed."""
    prompt = torch.tensor([bos_id])
    x1, _ = generate(model, model.config.max_len, 8, mask_id, batch_size=3, prompt=prompt, generator=seed)
    x2, _ = ancestral(model, model.config.max_len, 8, mask_id, batch_size=3, prompt=prompt, generator=seed)
    return x1, x2


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "minidlm", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=120)


def hand_made_cache(hf_home: Path, repo_id: str, folder: Path) -> Path:
    """The Hub cache layout, written by hand: models--owner--name/refs/main and snapshots/<commit>/<files>."""
    root = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(HEX)
    shutil.copytree(folder, root / "snapshots" / HEX)
    return root / "snapshots" / HEX


# ----------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("tie", [True, False])
def test_tiny_round_trip_weights_config_tie_and_tokens(tmp_path, tie):
    model, tok = tiny(tie)
    folder = save_pretrained(model, tmp_path / "m", tokenizer=tok)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                        "tokenizer.json"]
    with safe_open(str(folder / "model.safetensors"), "pt") as f:     # a tied matrix is stored once
        assert len(list(f.keys())) == len(model.state_dict()) - (1 if tie else 0)
    loaded = HubModel.from_pretrained(folder)
    assert isinstance(loaded, Model) and not loaded.training
    assert loaded.config == model.config and same_weights(loaded, model)
    assert (loaded.lm_head.weight is loaded.tok_emb.weight) == tie
    for a, b in zip(samples(model, tok.mask_id, tok.bos_id), samples(loaded, tok.mask_id, tok.bos_id)):
        assert torch.equal(a, b)
    assert load_tokenizer(folder / "tokenizer.json").itos == tok.itos
    config = json.loads((folder / "config.json").read_text())
    assert (config["mask_token_id"], config["bos_token_id"], config["eos_token_id"]) == (tok.mask_id, tok.bos_id,
                                                                                         tok.eos_id)


def test_save_pretrained_of_a_loaded_model_is_the_same_folder(tmp_path):
    """The mixin's own save_pretrained on a loaded HubModel writes tokenizer, card and metadata again."""
    model, tok = tiny()
    first = save_pretrained(model, tmp_path / "a", tokenizer=tok, card={"name": "tiny", "val_loss": 1.25},
                            info={"train_state": {"step": 3, "train_config": {"objective": "mdm"}}})
    HubModel.from_pretrained(first).save_pretrained(tmp_path / "b")
    for name in ("config.json", "card.json", "tokenizer.json", "README.md"):
        assert (tmp_path / "b" / name).read_text() == (first / name).read_text(), name
    assert same_weights(HubModel.from_pretrained(tmp_path / "b"), model)


def test_shipped_model_round_trip_samples_identical_tokens(exported):
    folder, model, info = exported
    loaded, info2 = load_model(folder)                                 # load_model delegates to the Hub layout
    assert isinstance(loaded, HubModel) and loaded.config == model.config and same_weights(loaded, model)
    assert loaded.lm_head.weight is loaded.tok_emb.weight
    assert info2["train_state"] == info["train_state"] and info2["metadata"]["objective"] == "mdm"
    tok = load_tokenizer(MDM / "tokenizer.json")
    assert load_tokenizer(info2["tokenizer"]).encode("Once upon a time, Mia.") == tok.encode("Once upon a time, Mia.")
    for a, b in zip(samples(model, tok.mask_id, tok.bos_id), samples(loaded, tok.mask_id, tok.bos_id)):
        assert torch.equal(a, b)
    pretrained, info3 = load_pretrained(folder)
    assert same_weights(pretrained, model) and info3["card"] == json.loads((MDM / "card.json").read_text())


def test_readme_card_has_front_matter_and_the_cards_numbers(exported):
    folder, _, _ = exported
    card = json.loads((MDM / "card.json").read_text())
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["library_name"] == "minidlm" and {"minidlm", "masked-diffusion"} <= set(front["tags"])
    body = text.split("---\n", 2)[2]
    for needle in (f"# {card['name']}", f"{card['params']:,}", f"{card['val_loss']:.4f}", card["command"],
                   card["note"], card["machine"], f"{card['steps']} steps"):
        assert needle in body, needle


# ----------------------------------------------------------------------------- the command line

def test_cli_export_then_sample_gives_the_shipped_models_stories(tmp_path):
    out = tmp_path / "hub" / "tales-mdm-nano"
    r = cli("export", "--ckpt", str(MDM), "--out", str(out))
    assert r.returncode == 0, r.stderr
    args = ("sample", "--seed", "3", "--n", "2", "--steps", "12")
    a, b = cli(*args, "--ckpt", str(out)), cli(*args, "--ckpt", str(MDM))
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert a.stdout == b.stdout and len(a.stdout.splitlines()) == 2


def test_cli_export_errors_are_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", "--ckpt", str(MDM), "--out", str(out)]) == 0
    before = (out / "model.safetensors").stat().st_mtime_ns
    cases = [(["--ckpt", str(MDM), "--out", str(out)], "--out"),                 # not empty, no --overwrite
             (["--ckpt", str(tmp_path / "none"), "--out", str(tmp_path / "o2")], "--ckpt"),
             (["--ckpt", str(out), "--out", str(tmp_path / "o3")], "--ckpt"),    # an export is not a checkpoint
             (["--ckpt", str(MDM), "--out", str(MDM.parent), "--overwrite"], "--out")]  # not an export: kept
    for argv, option in cases:
        capsys.readouterr()
        assert main(["export", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {option}:") and err.count("\n") == 1, err
    assert (out / "model.safetensors").stat().st_mtime_ns == before and (MDM / "card.json").is_file()
    time.sleep(0.01)
    assert main(["export", "--ckpt", str(MDM), "--out", str(out), "--overwrite"]) == 0
    assert (out / "model.safetensors").stat().st_mtime_ns != before and not list(tmp_path.glob(".out.*"))


# ----------------------------------------------------------------------------- Hub ids, offline

def test_hub_id_loads_offline_from_a_hand_made_cache(exported, tmp_path):
    folder, model, _ = exported
    snapshot = hand_made_cache(tmp_path / "hf", "alice/tales-mdm-nano", folder)
    loaded, info = load_model("alice/tales-mdm-nano")
    assert same_weights(loaded, model) and info["folder"] == snapshot and info["card"] is not None
    assert same_weights(HubModel.from_pretrained("alice/tales-mdm-nano"), model)   # the mixin, offline
    args = ("sample", "--seed", "5", "--n", "1", "--steps", "8")
    a = cli(*args, "--ckpt", "alice/tales-mdm-nano", env={"HF_HOME": str(tmp_path / "hf")})
    b = cli(*args, "--ckpt", str(MDM))
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout


@pytest.mark.parametrize("loader", [load_model, load_pretrained, HubModel.from_pretrained])
def test_hub_id_without_a_cache_is_one_line_naming_the_id(loader):
    t0 = time.time()
    with pytest.raises(FileNotFoundError, match=r"no cached copy of the Hub model 'alice/missing'.*offline") as e:
        loader("alice/missing")
    assert "\n" not in str(e.value)
    assert e.value.__cause__ is None and time.time() - t0 < 5


def test_cli_hub_id_without_a_cache():
    r = cli("sample", "--ckpt", "alice/missing", "--n", "1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: --ckpt:") and "alice/missing" in r.stderr and "offline" in r.stderr


# ----------------------------------------------------------------------------- bad inputs

def test_bad_folders_and_inputs_give_clear_errors(tmp_path, exported):
    folder, _, _ = exported
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_pretrained(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a Hub-layout folder"):
        load_pretrained(tmp_path / "empty")
    with pytest.raises(ValueError, match="is a file"):
        load_pretrained(MDM / "card.json")
    with pytest.raises(ValueError, match="tag"):
        load_model(folder, tag="best")
    with pytest.raises(ValueError, match="folder_or_id"):
        load_pretrained(3)
    foreign = tmp_path / "foreign"                                     # e.g. a transformers model's folder
    shutil.copytree(folder, foreign)
    (foreign / "config.json").write_text(json.dumps({"model_type": "bert", "vocab_size": 10}))
    with pytest.raises(ValueError, match="not a minidlm model"):
        load_pretrained(foreign)
    shutil.copy(folder / "config.json", foreign / "config.json")
    config = json.loads((foreign / "config.json").read_text())
    (foreign / "config.json").write_text(json.dumps({**config, "n_layer": config["n_layer"] + 1}))
    with pytest.raises(ValueError, match=r"state_dict:.*missing keys \['blocks\.4"):  # weights of another size
        load_pretrained(foreign)
    model, tok = tiny()
    with pytest.raises(ValueError, match="model"):
        save_pretrained(torch.nn.Linear(2, 2), tmp_path / "x")
    with pytest.raises(ValueError, match="tokenizer"):
        save_pretrained(model, tmp_path / "x", tokenizer=CharTokenizer("abcdefghijklmnop"))  # more ids than V
    with pytest.raises(ValueError, match="tokenizer"):
        save_pretrained(model, tmp_path / "x", tokenizer=42)
    assert not (tmp_path / "x").exists()


def test_cli_sample_on_a_folder_of_neither_format(tmp_path, capsys):
    (tmp_path / "neither").mkdir()
    (tmp_path / "neither" / "notes.txt").write_text("hello")
    assert main(["sample", "--ckpt", str(tmp_path / "neither")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --ckpt:") and "Hub-layout" in err and err.count("\n") == 1


def test_hub_id_shape():
    assert hub_format.looks_like_hub_id("alice/tales-mdm-nano")
    for bad in ("alice", "a/b/c", "/abs/path", "a/../b", "a--b/c", "", "alice/"):
        assert not hub_format.looks_like_hub_id(bad), bad


def test_train_init_from_accepts_an_exported_folder(exported, tmp_path):
    """`train --init-from` takes a Hub-layout folder: the weights copied in are the exported ones."""
    from minidlm.adapt import init_from_checkpoint
    folder, model, _ = exported
    fresh = Model(ModelConfig.from_dict(model.config.to_dict()))
    assert not same_weights(fresh, model)
    src = init_from_checkpoint(fresh, folder, tok=load_tokenizer(folder / "tokenizer.json"))
    assert same_weights(fresh, model) and src["vocab_size"] == model.config.vocab_size
    small, _ = tiny()
    with pytest.raises(ValueError, match="init_from: .*another architecture"):
        init_from_checkpoint(small, folder)
    with pytest.raises(ValueError, match="init_from: cannot load alice/none.*offline"):
        init_from_checkpoint(small, "alice/none")
