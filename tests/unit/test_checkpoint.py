"""Tests for minidlm.checkpoint: bitwise round trips, crash safety, export, refusing pickles."""
import json
import os
import pathlib

import pytest
import torch
import torch.nn.functional as F

from minidlm import checkpoint as ckpt_mod
from minidlm.checkpoint import export_model, load_checkpoint, load_model, save_checkpoint
from minidlm.model import Model, ModelConfig

V, LMAX = 50, 16


def make(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = ModelConfig(**{**dict(vocab_size=V, max_len=LMAX, n_layer=2, n_head=2, d_model=32, mask_id=V - 1), **kw})
    model = Model(cfg)
    opt = model.configure_optimizer(weight_decay=0.1, lr=1e-3, betas=(0.9, 0.95), device_type="cpu")
    return cfg, model, opt


def train_steps(model, opt, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(n):
        x = torch.randint(0, V - 1, (4, LMAX), generator=g)
        loss = F.cross_entropy(model(x, is_causal=True)[:, :-1].reshape(-1, V), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def files_of(d, tag="last") -> dict:
    """{"model": name, "optimizer": name or None} as the tag's JSON lists them."""
    return json.loads((pathlib.Path(d) / f"{tag}.json").read_text())["files"]


def model_file(d, tag="last") -> pathlib.Path:
    return pathlib.Path(d) / files_of(d, tag)["model"]


def names(d) -> set:
    return {p.name for p in pathlib.Path(d).iterdir()}


def assert_state_equal(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert torch.equal(a[k], b[k]), k


def assert_optim_equal(a: dict, b: dict):
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for pid in a["state"]:
        sa, sb = a["state"][pid], b["state"][pid]
        assert sa.keys() == sb.keys()
        for k in sa:
            if isinstance(sa[k], torch.Tensor):
                assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), (pid, k)
            else:
                assert sa[k] == sb[k]


# ----------------------------------------------------------------------------- round trips

def test_round_trip_is_bitwise(tmp_path):
    cfg, model, opt = make()
    train_steps(model, opt, 3)
    save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), train_state={"step": 3, "lr": 1e-3},
                    optimizer=opt)
    sid = json.loads((tmp_path / "last.json").read_text())["save_id"]
    assert names(tmp_path) == {f"last-{sid}.safetensors", f"last-{sid}.optim.safetensors", "last.json"}
    ck = load_checkpoint(tmp_path)
    assert ck["model_config"] == cfg.to_dict()
    assert ck["train_state"] == {"step": 3, "lr": 1e-3}
    assert_state_equal(ck["state_dict"], model.state_dict())
    assert_optim_equal(ck["optimizer_state"], opt.state_dict())
    assert ck["metadata"]["format_version"] == 2
    assert ck["metadata"]["save_id"] == sid
    assert ck["metadata"]["files"] == {"model": f"last-{sid}.safetensors", "optimizer": f"last-{sid}.optim.safetensors"}

    loaded, info = load_model(tmp_path)
    assert_state_equal(loaded.state_dict(), model.state_dict())
    assert loaded.lm_head.weight is loaded.tok_emb.weight  # tying restored
    assert info["optimizer_state"] is not None and "state_dict" not in info


def test_resume_is_exact(tmp_path):
    cfg, model, opt = make()
    train_steps(model, opt, 2, seed=1)
    save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), optimizer=opt, tag="step-2")
    train_steps(model, opt, 3, seed=2)  # the reference continuation

    resumed, info = load_model(tmp_path, tag="step-2")
    opt2 = resumed.configure_optimizer(weight_decay=0.1, lr=1e-3, betas=(0.9, 0.95), device_type="cpu")
    opt2.load_state_dict(info["optimizer_state"])
    train_steps(resumed, opt2, 3, seed=2)
    assert_state_equal(resumed.state_dict(), model.state_dict())


def test_untied_model_and_no_optimizer(tmp_path):
    cfg, model, _ = make(tie_embeddings=False)
    save_checkpoint(tmp_path, model, model_config=cfg.to_dict())
    assert files_of(tmp_path)["optimizer"] is None and len(names(tmp_path)) == 2
    loaded, info = load_model(tmp_path)
    assert info["optimizer_state"] is None and info["train_state"] is None
    assert loaded.lm_head.weight is not loaded.tok_emb.weight
    assert_state_equal(loaded.state_dict(), model.state_dict())


def test_load_from_safetensors_file_path(tmp_path):
    cfg, model, opt = make()
    train_steps(model, opt, 1)
    save_checkpoint(tmp_path / "ck", model, model_config=cfg.to_dict(), tag="shipped", optimizer=opt)
    # the tensor file save_checkpoint wrote (its JSON is shipped.json), or the JSON itself
    for path in (model_file(tmp_path / "ck", "shipped"), tmp_path / "ck" / "shipped.json"):
        loaded, info = load_model(path)
        assert_state_equal(loaded.state_dict(), model.state_dict())
        assert_optim_equal(info["optimizer_state"], opt.state_dict())
    # X.safetensors + X.json with the same stem (renamed copies, e.g. shipped by hand)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "model.safetensors").write_bytes(model_file(tmp_path / "ck", "shipped").read_bytes())
    (tmp_path / "x" / "model.json").write_text((tmp_path / "ck" / "shipped.json").read_text())
    optim = tmp_path / "ck" / files_of(tmp_path / "ck", "shipped")["optimizer"]
    (tmp_path / "x" / "model.optim.safetensors").write_bytes(optim.read_bytes())
    loaded, info = load_model(tmp_path / "x" / "model.safetensors")
    assert_state_equal(loaded.state_dict(), model.state_dict())
    assert_optim_equal(info["optimizer_state"], opt.state_dict())
    with pytest.raises(ValueError, match="optimizer state"):
        load_checkpoint(optim)


def test_load_model_falls_back_to_the_only_tag(tmp_path):
    cfg, model, _ = make()
    save_checkpoint(tmp_path / "NAME", model, model_config=cfg.to_dict(), tag="model")  # a shipped folder
    (tmp_path / "NAME" / "tokenizer.json").write_text("{}")  # other JSON files are not tags
    for kw in ({}, {"tag": "model"}):
        loaded, _ = load_model(tmp_path / "NAME", **kw)
        assert_state_equal(loaded.state_dict(), model.state_dict())
    with pytest.raises(FileNotFoundError, match="last.json"):
        load_checkpoint(tmp_path / "NAME")  # load_checkpoint itself does not guess
    with pytest.raises(FileNotFoundError, match="last.json"):
        load_model(tmp_path / "NAME", tag="last")  # an explicit tag is not replaced
    save_checkpoint(tmp_path / "NAME", model, model_config=cfg.to_dict(), tag="other")
    with pytest.raises(FileNotFoundError, match=r"tags here: \['model', 'other'\]"):
        load_model(tmp_path / "NAME")  # two tags, no "last": ambiguous
    save_checkpoint(tmp_path / "NAME", model, model_config=cfg.to_dict(), tag="last")
    assert load_model(tmp_path / "NAME")[1]["metadata"]["tag"] == "last"


def test_bf16_storage(tmp_path):
    cfg, model, _ = make()
    save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), dtype=torch.bfloat16, tag="bf16")
    save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), tag="fp32")
    assert model_file(tmp_path, "bf16").stat().st_size < 0.6 * model_file(tmp_path, "fp32").stat().st_size
    ck = load_checkpoint(tmp_path, tag="bf16")
    assert ck["metadata"]["stored_dtype"] == "bfloat16"
    for k, ref in model.state_dict().items():
        got = ck["state_dict"][k]
        assert got.dtype == torch.float32  # cast back by default
        torch.testing.assert_close(got, ref, rtol=2**-8, atol=0)  # bf16 has 8 significant bits
        assert torch.equal(got, ref.to(torch.bfloat16).float())


# ----------------------------------------------------------------------------- crash safety

def test_crash_before_replace_keeps_previous_checkpoint(tmp_path, monkeypatch):
    cfg, model, opt = make()
    save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), optimizer=opt, train_state={"step": 0})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    train_steps(model, opt, 2)

    def crash(src, dst):
        assert pathlib.Path(src).exists()  # the temp file was fully written
        raise OSError("simulated power loss")

    monkeypatch.setattr(ckpt_mod.os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), optimizer=opt, train_state={"step": 2})
    monkeypatch.undo()

    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # no temp leftovers, no half-written final file
    assert load_checkpoint(tmp_path)["train_state"] == {"step": 0}


class Crash(Exception):
    """A simulated power loss."""


def _snapshot(model, opt, step):
    return {"state": {k: v.clone() for k, v in model.state_dict().items()},
            "optim": _clone_optim(opt.state_dict()), "step": step}


def _clone_optim(sd):
    return {"state": {pid: {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in e.items()}
                      for pid, e in sd["state"].items()},
            "param_groups": [dict(g) for g in sd["param_groups"]]}


def _assert_loads_as(path, snap):
    ck = load_checkpoint(path)
    assert ck["train_state"] == {"step": snap["step"]}
    assert_state_equal(ck["state_dict"], snap["state"])  # bitwise
    assert_optim_equal(ck["optimizer_state"], snap["optim"])


def _count_calls(monkeypatch, fn_name, action):
    """How often ``action`` calls os.<fn_name>."""
    real, n = getattr(os, fn_name), [0]

    def counting(*a, **kw):
        n[0] += 1
        return real(*a, **kw)

    monkeypatch.setattr(ckpt_mod.os, fn_name, counting)
    action()
    monkeypatch.undo()
    return n[0]


@pytest.mark.parametrize("fn_name", ["replace", "fsync"])
@pytest.mark.parametrize("hard", [False, True], ids=["clean-exception", "hard-crash"])
def test_crash_at_every_write_point_keeps_a_loadable_checkpoint(tmp_path, monkeypatch, fn_name, hard):
    """Crash the second save of tag "last" at its 1st, 2nd, ... os.replace / os.fsync call.

    Before "last.json" is replaced, the first save must load bitwise; after, the second.
    hard: deletions fail too (as after a real power loss), so temp files and orphan tensor
    files stay behind -- the next successful save must sweep them."""
    cfg, model, opt = make()
    train_steps(model, opt, 1)
    save = lambda step: save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), optimizer=opt,  # noqa: E731
                                        train_state={"step": step})
    save(1)
    first = _snapshot(model, opt, 1)
    train_steps(model, opt, 2, seed=5)
    second = _snapshot(model, opt, 3)
    n_calls = _count_calls(monkeypatch, fn_name, lambda: save(3))
    assert n_calls >= (3 if fn_name == "replace" else 4)  # model, optimizer, JSON (+ directory fsyncs)
    real_fn, real_replace, real_unlink = getattr(os, fn_name), os.replace, os.unlink

    for crash_at in range(1, n_calls + 1):
        # start each round from the first save as the committed state
        for p in tmp_path.iterdir():
            real_unlink(p)
        with torch.no_grad():
            for k, v in model.state_dict().items():
                v.copy_(first["state"][k])
        opt.load_state_dict(_clone_optim(first["optim"]))
        save(1)
        for k, v in model.state_dict().items():
            with torch.no_grad():
                v.copy_(second["state"][k])
        opt.load_state_dict(_clone_optim(second["optim"]))
        before = names(tmp_path)

        calls, committed = [0], [False]

        def crashing(*a, **kw):
            calls[0] += 1
            if calls[0] == crash_at:
                raise Crash(f"simulated power loss at {fn_name} call {crash_at}")
            out = real_fn(*a, **kw)
            if fn_name == "replace" and str(a[1]).endswith("last.json"):
                committed[0] = True
            return out

        def replace_watch(src, dst):
            real_replace(src, dst)
            if str(dst).endswith("last.json"):
                committed[0] = True

        def no_unlink(*a, **kw):
            raise OSError("simulated: the machine is already off")

        monkeypatch.setattr(ckpt_mod.os, fn_name, crashing)
        if fn_name != "replace":
            monkeypatch.setattr(ckpt_mod.os, "replace", replace_watch)
        if hard:
            monkeypatch.setattr(ckpt_mod.os, "unlink", no_unlink)
        with pytest.raises(Crash):
            save(3)
        monkeypatch.undo()

        if fn_name == "replace":
            assert not committed[0]  # every os.replace call precedes or is the JSON's
        _assert_loads_as(tmp_path, second if committed[0] else first)
        if not hard and not committed[0]:
            # leftovers are at most complete tensor files of the crashed save, never temp files
            assert all(n in before or not n.startswith(".") for n in names(tmp_path))

        # the next save of the same tag succeeds and leaves exactly one set of files
        save(3)
        _assert_loads_as(tmp_path, second)
        f = files_of(tmp_path)
        assert names(tmp_path) == {"last.json", f["model"], f["optimizer"]}


def test_no_stale_files_accumulate(tmp_path):
    cfg, model, opt = make()
    save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), tag="best")
    best = names(tmp_path)
    seen = set()
    for step in range(3):
        train_steps(model, opt, 1, seed=step)
        save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), optimizer=opt, train_state={"step": step})
        f = files_of(tmp_path)
        assert names(tmp_path) == best | {"last.json", f["model"], f["optimizer"]}
        assert not seen & set(f.values())  # fresh names every save
        seen |= set(f.values())
    # dropping the optimizer drops its file too; other tags are untouched
    save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), tag="last")
    assert names(tmp_path) == best | {"last.json", files_of(tmp_path)["model"]}
    assert load_checkpoint(tmp_path, tag="best")["optimizer_state"] is None


def test_tags_sharing_a_prefix_do_not_sweep_each_other(tmp_path):
    cfg, model, _ = make()
    for tag in ("step", "step-1000", "step-1000-x", "last", "last-1"):
        save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), tag=tag, train_state={"tag": tag})
    for tag in ("step-1000", "step", "last-1", "last"):  # save again: each sweep runs
        save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), tag=tag, train_state={"tag": tag})
    assert len(names(tmp_path)) == 10
    for tag in ("step", "step-1000", "step-1000-x", "last", "last-1"):
        assert load_checkpoint(tmp_path, tag=tag)["train_state"] == {"tag": tag}


def test_failed_cleanup_does_not_fail_the_save(tmp_path, monkeypatch):
    cfg, model, _ = make()
    save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), train_state={"step": 0})
    old = model_file(tmp_path)

    def no_unlink(*a, **kw):
        raise OSError("simulated: permission denied")

    monkeypatch.setattr(ckpt_mod.os, "unlink", no_unlink)
    save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), train_state={"step": 1})
    monkeypatch.undo()
    assert old.exists() and load_checkpoint(tmp_path)["train_state"] == {"step": 1}
    save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), train_state={"step": 2})
    assert names(tmp_path) == {"last.json", model_file(tmp_path).name}  # swept now


def test_format_1_checkpoints_still_load_and_are_replaced(tmp_path):
    """Version 1 wrote last.safetensors / last.optim.safetensors and no 'files' in the JSON."""
    cfg, model, opt = make()
    train_steps(model, opt, 1)
    save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), optimizer=opt, train_state={"step": 1})
    f = files_of(tmp_path)
    (tmp_path / f["model"]).rename(tmp_path / "last.safetensors")
    (tmp_path / f["optimizer"]).rename(tmp_path / "last.optim.safetensors")
    record = json.loads((tmp_path / "last.json").read_text())
    del record["files"]
    record["format_version"] = 1
    (tmp_path / "last.json").write_text(json.dumps(record))
    _assert_loads_as(tmp_path, _snapshot(model, opt, 1))
    assert load_checkpoint(tmp_path)["metadata"]["format_version"] == 1
    loaded, _ = load_model(tmp_path / "last.safetensors")
    assert_state_equal(loaded.state_dict(), model.state_dict())

    save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), optimizer=opt, train_state={"step": 1})
    f = files_of(tmp_path)
    assert names(tmp_path) == {"last.json", f["model"], f["optimizer"]}  # old-style files removed
    _assert_loads_as(tmp_path, _snapshot(model, opt, 1))


def test_hand_mixed_files_are_refused(tmp_path):
    cfg, model, opt = make()
    save_checkpoint(tmp_path / "a", model, model_config=cfg.to_dict())
    save_checkpoint(tmp_path / "b", model, model_config=cfg.to_dict())
    # a's JSON next to b's weights under a's name: refused rather than silently mixed
    model_file(tmp_path / "a").write_bytes(model_file(tmp_path / "b").read_bytes())
    with pytest.raises(ValueError, match="different save"):
        load_checkpoint(tmp_path / "a")


def test_file_names_in_json_cannot_escape_the_folder(tmp_path):
    cfg, model, _ = make()
    save_checkpoint(tmp_path / "ck", model, model_config=cfg.to_dict())
    record = json.loads((tmp_path / "ck" / "last.json").read_text())
    for bad in ("../ck/x.safetensors", "/etc/passwd", ".hidden.safetensors", "x.pt", 3):
        record["files"]["model"] = bad
        (tmp_path / "ck" / "last.json").write_text(json.dumps(record))
        with pytest.raises(ValueError, match="bad file name"):
            load_checkpoint(tmp_path / "ck")


# ----------------------------------------------------------------------------- export

def test_export_model(tmp_path):
    cfg, model, opt = make()
    train_steps(model, opt, 2)
    save_checkpoint(tmp_path / "run", model, model_config=cfg.to_dict(), optimizer=opt, tag="best",
                    train_state={"step": 2})
    card = {"name": "tiny", "license": "MIT", "trained_steps": 2}
    out = export_model(tmp_path / "run", tmp_path / "ship", extra={"model_card": card})
    assert out == tmp_path / "ship" / "model.json"
    src = json.loads((tmp_path / "run" / "best.json").read_text())
    assert names(tmp_path / "ship") == {"model.json", model_file(tmp_path / "ship", "model").name}
    src_bytes = sum(p.stat().st_size for p in (tmp_path / "run").iterdir())
    assert model_file(tmp_path / "ship", "model").stat().st_size < 0.6 * model_file(tmp_path / "run", "best").stat().st_size
    assert sum(p.stat().st_size for p in (tmp_path / "ship").iterdir()) < 0.25 * src_bytes  # no optimizer

    for kw in ({}, {"tag": "model"}):
        loaded, info = load_model(tmp_path / "ship", **kw)
        assert info["optimizer_state"] is None and info["train_state"] == {"step": 2}
        assert info["metadata"]["model_card"] == card
        assert info["metadata"]["exported_from"]["save_id"] == src["save_id"]
        assert info["metadata"]["stored_dtype"] == "bfloat16"
        assert loaded.lm_head.weight is loaded.tok_emb.weight
        for k, ref in model.state_dict().items():
            got = loaded.state_dict()[k]
            assert got.dtype == ref.dtype
            torch.testing.assert_close(got, ref, rtol=2**-8, atol=0)
            assert torch.equal(got, ref.to(torch.bfloat16).to(ref.dtype))

    exact = export_model(tmp_path / "run", tmp_path / "ship", dst_tag="fp32", dtype=None)
    assert_state_equal(load_checkpoint(exact)["state_dict"], model.state_dict())
    with pytest.raises(ValueError, match="reserved"):
        export_model(tmp_path / "run", tmp_path / "ship2", extra={"save_id": "x"})
    with pytest.raises(ValueError, match="extra"):
        export_model(tmp_path / "run", tmp_path / "ship2", extra={"t": torch.zeros(1)})
    with pytest.raises(FileNotFoundError, match="best.json"):
        export_model(tmp_path / "ship", tmp_path / "ship2")
    assert not (tmp_path / "ship2").exists()


def test_missing_checkpoint_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        load_checkpoint(tmp_path / "nothing_here")
    with pytest.raises(FileNotFoundError, match="last.json"):
        load_checkpoint(tmp_path)  # empty directory
    cfg, model, _ = make()
    save_checkpoint(tmp_path, model, model_config=cfg.to_dict())
    gone = model_file(tmp_path)
    gone.unlink()
    with pytest.raises(FileNotFoundError, match=gone.name):
        load_checkpoint(tmp_path)


# ----------------------------------------------------------------------------- refusing pickles

class _Trap:
    """Unpickling this object creates a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_pickle_is_refused_without_running_code(tmp_path):
    cfg, model, _ = make()
    marker = tmp_path / "PWNED"
    save_checkpoint(tmp_path / "ck", model, model_config=cfg.to_dict())

    # the weights file replaced by a torch.save pickle holding the trap
    torch.save({"model": _Trap(marker)}, model_file(tmp_path / "ck"))
    with pytest.raises(ValueError, match="not a minidlm safetensors checkpoint"):
        load_checkpoint(tmp_path / "ck")
    with pytest.raises(ValueError, match="not a minidlm safetensors checkpoint"):
        load_model(tmp_path / "ck")

    # a pickle handed over directly, with or without a .safetensors name
    torch.save(_Trap(marker), tmp_path / "model.pt")
    with pytest.raises(ValueError, match="not a minidlm safetensors checkpoint"):
        load_checkpoint(tmp_path / "model.pt")
    torch.save(_Trap(marker), tmp_path / "model.safetensors")
    (tmp_path / "model.json").write_text((tmp_path / "ck" / "last.json").read_text())
    with pytest.raises(ValueError, match="not a minidlm safetensors checkpoint"):
        load_checkpoint(tmp_path / "model.safetensors")

    # a pickle in place of the JSON
    torch.save(_Trap(marker), tmp_path / "ck" / "last.json")
    with pytest.raises(ValueError, match="not a minidlm safetensors checkpoint"):
        load_checkpoint(tmp_path / "ck")

    assert not marker.exists()
    # sanity: the trap does fire when unpickled
    torch.load(tmp_path / "model.pt", weights_only=False)
    assert marker.exists()


def test_foreign_or_corrupt_files_are_refused(tmp_path):
    cfg, model, _ = make()
    save_checkpoint(tmp_path, model, model_config=cfg.to_dict())
    weights = model_file(tmp_path)
    good = weights.read_bytes()

    weights.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(ValueError, match="not a minidlm safetensors checkpoint"):
        load_checkpoint(tmp_path)

    from safetensors.torch import save_file
    save_file({"w": torch.zeros(3)}, weights)  # valid safetensors, not ours
    with pytest.raises(ValueError, match="not a minidlm safetensors checkpoint"):
        load_checkpoint(tmp_path)

    (tmp_path / "last.json").write_text(json.dumps({"hello": "world"}))
    with pytest.raises(ValueError, match="not a minidlm safetensors checkpoint"):
        load_checkpoint(tmp_path)


# ----------------------------------------------------------------------------- mismatches and bad input

def test_config_mismatch_names_keys(tmp_path):
    cfg, model, _ = make()
    save_checkpoint(tmp_path, model, model_config={**cfg.to_dict(), "d_model": 64})
    with pytest.raises(ValueError, match=r"state_dict.*tok_emb\.weight"):
        load_model(tmp_path)
    save_checkpoint(tmp_path, model, model_config={**cfg.to_dict(), "n_layer": 3})
    with pytest.raises(ValueError, match=r"missing keys.*blocks\.2\."):
        load_model(tmp_path)
    save_checkpoint(tmp_path, model, model_config={**cfg.to_dict(), "bias": True})
    with pytest.raises(ValueError, match=r"missing keys.*bias"):
        load_model(tmp_path)


def test_bad_save_arguments(tmp_path):
    cfg, model, _ = make()
    with pytest.raises(ValueError, match="model_config"):
        save_checkpoint(tmp_path, model, model_config=cfg)
    with pytest.raises(ValueError, match="train_state"):
        save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), train_state={"t": torch.zeros(1)})
    with pytest.raises(ValueError, match="tag"):
        save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), tag="../evil")
    with pytest.raises(ValueError, match="dtype"):
        save_checkpoint(tmp_path, model, model_config=cfg.to_dict(), dtype=torch.int8)
    with pytest.raises(ValueError, match="model"):
        save_checkpoint(tmp_path, {"w": torch.zeros(1)}, model_config=cfg.to_dict())
    assert list(tmp_path.iterdir()) == []  # nothing written by failed calls
