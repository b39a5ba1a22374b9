"""Reading safe checkpoints (the format is described in checkpoint.py; lesson 06).

Every file is checked before its bytes are trusted: the JSON marker must name the format, the
tensor files it lists must carry the same random ``save_id`` in their safetensors headers, and
nothing is ever unpickled. ``load_checkpoint`` and ``load_model`` are re-exported by checkpoint.py.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors import safe_open

FORMAT = "minidlm-checkpoint"
FORMAT_VERSION = 2  # 2: tensor files named by save id and listed in the JSON
_MAX_HEADER = 100 * 2**20  # a safetensors JSON header larger than this is not one of ours
_ID = "[0-9a-f]{16}"       # save ids: secrets.token_hex(8)
_SUFFIX = ".safetensors"


def _check_tag(tag, what: str = "tag") -> None:
    if not isinstance(tag, str) or not tag or "/" in tag or "\\" in tag or tag.startswith(".") or "\0" in tag:
        raise ValueError(f"{what}: expected a plain file-name stem like 'last' or 'step-1000', got {tag!r}")


def _not_ours(path: Path, why: str) -> ValueError:
    return ValueError(f"{path} is not a minidlm safetensors checkpoint ({why}); "
                      "minidlm never unpickles files (e.g. from torch.save)")


def _read_header(path: Path) -> dict:
    """Parse the safetensors header ourselves first: 8-byte little-endian length + JSON."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 2 <= n <= min(size - 8, _MAX_HEADER):
            raise _not_ours(path, "no safetensors header")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _not_ours(path, "header is not JSON") from None
    if not isinstance(header, dict):
        raise _not_ours(path, "header is not a JSON object")
    return header


def _load_tensors(path: Path, save_id: str, kind: str, device) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    meta = _read_header(path).get("__metadata__") or {}
    if meta.get("format") != FORMAT or meta.get("kind") != kind:
        raise _not_ours(path, f"missing minidlm '{kind}' metadata")
    if meta.get("save_id") != save_id:
        raise ValueError(f"{path} belongs to a different save than its JSON (save_id {meta.get('save_id')} "
                         f"!= {save_id}): an interrupted or superseded save; refusing to load mixed state")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as e:  # safetensors raises its own error types on corrupt data
        raise _not_ours(path, f"unreadable tensors: {e}") from None
    return {name: t.to(device) for name, t in tensors.items()}


def _read_record(json_path: Path) -> dict:
    try:
        record = json.loads(json_path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _not_ours(json_path, "not a JSON file") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise _not_ours(json_path, "JSON lacks format='minidlm-checkpoint'")
    missing = [k for k in ("save_id", "model_config") if k not in record]
    if missing:
        raise _not_ours(json_path, f"JSON lacks keys {missing}")
    if not isinstance(record.get("format_version", 0), int) or record.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{json_path}: format_version {record.get('format_version')!r} is newer than this "
                         f"minidlm understands ({FORMAT_VERSION})")
    return record


def _files_of(record: dict, json_path: Path) -> tuple[str, str | None]:
    """-> (model file name, optimizer file name or None), both inside json_path's folder."""
    files = record.get("files")
    if files is None:  # format 1: names follow the JSON's stem
        stem = json_path.name[: -len(".json")]
        return f"{stem}{_SUFFIX}", (f"{stem}.optim{_SUFFIX}" if record.get("optimizer") is not None else None)
    if not isinstance(files, dict):
        raise _not_ours(json_path, "bad 'files' entry")
    model_name, optim_name = files.get("model"), files.get("optimizer")
    for name in (model_name, optim_name) if optim_name is not None else (model_name,):
        if (not isinstance(name, str) or not name.endswith(_SUFFIX) or name.startswith(".")
                or "/" in name or "\\" in name or "\0" in name):
            raise _not_ours(json_path, f"bad file name in 'files': {name!r}")
    return model_name, optim_name


def _locate(path_dir, tag) -> tuple[Path, Path | None]:
    """-> (the JSON, the model tensor file if one was passed explicitly)."""
    p = Path(path_dir)
    if p.is_dir():
        _check_tag(tag)
        return p / f"{tag}.json", None
    if p.is_file():
        if p.name.endswith(".json"):
            return p, None
        if not p.name.endswith(_SUFFIX):
            raise _not_ours(p, "expected a checkpoint directory, its .json, or a .safetensors file")
        stem = p.name[: -len(_SUFFIX)]
        if stem.endswith(".optim"):
            raise ValueError(f"{p} holds optimizer state; pass the checkpoint folder or its model .safetensors")
        if (same := p.with_name(stem + ".json")).is_file():  # X.safetensors + X.json (e.g. shipped)
            return same, p
        if (m := re.fullmatch(rf"(.+)-{_ID}", stem)) and (marker := p.with_name(m.group(1) + ".json")).is_file():
            return marker, p                                  # T-<id>.safetensors + T.json
        raise FileNotFoundError(f"checkpoint JSON not found for {p}: expected {same} beside it")
    raise FileNotFoundError(f"no checkpoint at {p}")


def _tags_in(path_dir: Path) -> list[str]:
    """Tags with a JSON and a tensor file in ``path_dir`` (cheap: names only)."""
    try:
        names = os.listdir(path_dir)
    except OSError:
        return []
    stems = set()
    for name in names:
        if name.endswith(_SUFFIX) and not name.endswith(".optim" + _SUFFIX):
            stem = name[: -len(_SUFFIX)]
            stems.add(stem)
            if m := re.fullmatch(rf"(.+)-{_ID}", stem):
                stems.add(m.group(1))
    return sorted(n[: -len(".json")] for n in names
                  if n.endswith(".json") and not n.startswith(".") and n[: -len(".json")] in stems)


def _unflatten_optimizer(opt_json: dict, tensors: dict) -> dict:
    state = {int(pid): dict(entries) for pid, entries in opt_json["state"].items()}
    for name, t in tensors.items():
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = t
    groups = [{k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in g.items()}
              for g in opt_json["param_groups"]]  # JSON turned tuples (betas) into lists
    return {"state": state, "param_groups": groups}


_RECORD_KEYS = {"format", "format_version", "save_id", "tag", "files", "created_unix", "torch_version",
                "model_config", "train_state", "tied", "dtypes", "stored_dtype", "optimizer"}


def _load(path_dir, tag, map_location, with_optimizer: bool) -> dict:
    json_path, explicit = _locate(path_dir, tag)
    if not json_path.is_file():
        tags = _tags_in(json_path.parent)
        raise FileNotFoundError(f"checkpoint not found: {json_path} (a save with this tag never completed)"
                                + (f"; tags here: {tags}" if tags else ""))
    record = _read_record(json_path)
    try:
        device = torch.device(map_location)
    except (RuntimeError, TypeError):
        raise ValueError(f"map_location: expected a device like 'cpu' or 'cuda:0', got {map_location!r}") from None
    model_name, optim_name = _files_of(record, json_path)
    model_path = explicit if explicit is not None else json_path.parent / model_name

    state_dict = _load_tensors(model_path, record["save_id"], "model", device)
    for name, dt in record.get("dtypes", {}).items():  # undo a compact storage dtype
        target = getattr(torch, str(dt), None)
        if name not in state_dict or not isinstance(target, torch.dtype):
            raise _not_ours(json_path, f"bad dtype entry {name!r}: {dt!r}")
        state_dict[name] = state_dict[name].to(target)
    for alias, name in record.get("tied", {}).items():
        if name not in state_dict:
            raise _not_ours(json_path, f"tied entry {alias!r} -> missing tensor {name!r}")
        state_dict[alias] = state_dict[name]  # re-tie: the same tensor under both names

    optimizer_state = None
    if with_optimizer and record.get("optimizer") is not None:
        if optim_name is None:
            raise _not_ours(json_path, "optimizer state without an optimizer file")
        optim_path = json_path.parent / optim_name
        if explicit is not None and not optim_path.is_file():  # a renamed X.safetensors: try X.optim.safetensors
            alt = explicit.with_name(explicit.name[: -len(_SUFFIX)] + ".optim" + _SUFFIX)
            optim_path = alt if alt.is_file() else optim_path
        opt_tensors = _load_tensors(optim_path, record["save_id"], "optimizer", device)
        optimizer_state = _unflatten_optimizer(record["optimizer"], opt_tensors)

    metadata = {k: record.get(k) for k in ("format_version", "save_id", "tag", "created_unix",
                                          "torch_version", "stored_dtype")}
    metadata["format_version"] = record.get("format_version", 1)
    metadata["files"] = {"model": model_path.name, "optimizer": optim_name}
    metadata.update({k: v for k, v in record.items() if k not in _RECORD_KEYS})  # e.g. export_model's extra
    return {"model_config": record["model_config"], "state_dict": state_dict,
            "train_state": record.get("train_state"), "optimizer_state": optimizer_state, "metadata": metadata}


def load_checkpoint(path_dir, tag: str = "last", map_location="cpu") -> dict:
    """Read a checkpoint written by ``save_checkpoint``; never unpickles.

    ``path_dir`` is a checkpoint directory (uses ``tag``), a checkpoint's ``T.json``, or a
    model ``.safetensors`` file with its JSON beside it (``X.safetensors`` + ``X.json``, or
    ``T-<id>.safetensors`` + ``T.json``). Weights stored in a compact dtype are cast back
    to their original dtype (float32 for a normal model).
    Returns {model_config, state_dict, train_state, optimizer_state (or None), metadata}."""
    return _load(path_dir, tag, map_location, with_optimizer=True)


def check_state_dict(model: torch.nn.Module, state_dict: dict) -> None:
    """ValueError naming every missing, unexpected or wrongly-shaped key."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    shapes = sorted(f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
                    for k in set(expected) & set(state_dict) if state_dict[k].shape != expected[k].shape)
    if missing or unexpected or shapes:
        raise ValueError(f"state_dict: does not match the model config; missing keys {missing}, "
                         f"unexpected keys {unexpected}, shape mismatches {shapes}")


def _build_model(ckpt: dict, map_location):
    """Model from ckpt['model_config'] with ckpt['state_dict'] loaded strictly (the key is popped)."""
    from .model import Model, ModelConfig

    model = Model(ModelConfig.from_dict(ckpt["model_config"]))
    state_dict = ckpt.pop("state_dict")
    check_state_dict(model, state_dict)
    model.load_state_dict(state_dict, strict=True)
    return model.to(map_location).eval()


def _is_hub_source(path_dir) -> bool:
    """A Hub-layout folder holding no minidlm checkpoint, or a string ``owner/name`` that is no local path."""
    if not isinstance(path_dir, (str, os.PathLike)):
        return False
    p = Path(path_dir)
    if p.is_dir():
        return (p / "config.json").is_file() and (p / "model.safetensors").is_file() and not _tags_in(p)
    if p.exists():
        return False
    try:
        from .hub_format import looks_like_hub_id
    except ImportError:                                     # no huggingface_hub: the plain "no checkpoint" error
        return False
    return looks_like_hub_id(os.fspath(path_dir))


def load_model(path_dir, tag: str | None = None, map_location="cpu"):
    """Build ``Model(ModelConfig.from_dict(...))`` and load its weights strictly.

    tag None: "last" if the folder has it, else the folder's only tag (e.g. "model" in a
    shipped ``data/checkpoints/NAME/``). Returns (model, info) where info is
    load_checkpoint's dict without ``state_dict``. The model is in eval mode on ``map_location``.

    A folder in the Hugging Face Hub layout (config.json + model.safetensors, no minidlm checkpoint) or a
    Hub id ``owner/name`` that is not a local path loads through ``hub_format.load_pretrained`` (appendix A1)."""
    if _is_hub_source(path_dir):
        if tag is not None:
            raise ValueError(f"tag: a Hub-layout model ({path_dir}) has no tags; pass tag=None")
        from .hub_format import load_pretrained
        return load_pretrained(path_dir, map_location=map_location)
    if tag is None:
        tag = "last"
        p = Path(path_dir)
        if p.is_dir() and not (p / "last.json").is_file() and len(tags := _tags_in(p)) == 1:
            tag = tags[0]
    ckpt = load_checkpoint(path_dir, tag=tag, map_location=map_location)
    return _build_model(ckpt, map_location), ckpt
