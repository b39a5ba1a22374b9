"""Safe checkpoints: safetensors + JSON, never pickle. Taught in lesson 06.

A checkpoint with tag ``T`` in directory ``D`` is:

* ``D/T-<save_id>.safetensors``        model tensors (tied weights stored once, re-tied on load);
* ``D/T-<save_id>.optim.safetensors``  optimizer tensors, if an optimizer was given;
* ``D/T.json``                         the commit marker: model config, train state, optimizer
                                       hyperparameters, the random ``save_id`` (which the tensor
                                       files repeat in their headers) and the names of the tensor
                                       files it belongs to.

Why not ``torch.save``? Loading a pickle runs arbitrary code chosen by whoever wrote
the file. safetensors is a JSON header plus raw bytes: loading it only reads data.

Crash safety: every file is written to a temp file in the same directory, flushed,
fsync'ed and then ``os.replace``'d over its final name (atomic on POSIX), so a final
name never holds a half-written file. The tensor files of a new save get NEW names
(they contain the save id), so they never overwrite the files the current ``T.json``
points to. ``T.json`` is replaced LAST; only then are the previous save's tensor files
deleted. Whatever instant a crash hits, ``T.json`` names a complete set of files: the
previous save's or the new one's. Leftovers of a crashed save (temp files, unreferenced
tensor files) are removed by the next save of the same tag.

Checkpoints of format version 1 (``T.safetensors`` / ``T.optim.safetensors``, no file
names in the JSON) still load.

This module writes; ``checkpoint_read.py`` reads (``load_checkpoint`` and ``load_model`` are
re-exported here).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path

import torch
from safetensors.torch import save as safetensors_save

from ._atomic import atomic_write
from .checkpoint_read import (FORMAT, FORMAT_VERSION, _ID, _SUFFIX, _build_model, _check_tag, _files_of,  # noqa: F401
                              _load, _locate, _read_record, _tags_in, check_state_dict, load_checkpoint,
                              load_model)


_STORE_DTYPES = {None: None, torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


# ----------------------------------------------------------------------------- writing

def _fsync_dir(directory: Path) -> None:
    """Make the renames durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """temp file in the same directory -> flush -> fsync -> os.replace (``_atomic.atomic_write``)."""
    atomic_write(path, lambda f: f.write(data))


def _dedup_shared(state_dict: dict) -> tuple[dict, dict]:
    """Split a state dict into unique tensors and {alias: name} for tensors sharing memory.

    safetensors refuses two names for one storage (e.g. tied embeddings)."""
    unique, aliases, seen = {}, {}, {}
    for name, t in state_dict.items():
        key = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride())
        if t.numel() > 0 and key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            unique[name] = t
    return unique, aliases


def _flatten_optimizer(opt_state: dict) -> tuple[dict, dict]:
    """AdamW-style state dict -> (named tensors, JSON-able rest)."""
    tensors, state_json = {}, {}
    for pid, entries in opt_state["state"].items():
        state_json[str(pid)] = {}
        for k, val in entries.items():
            if isinstance(val, torch.Tensor):
                tensors[f"state.{pid}.{k}"] = val.detach().cpu().contiguous()
            else:
                state_json[str(pid)][k] = val
    return tensors, {"state": state_json, "param_groups": opt_state["param_groups"]}


def _json_bytes(obj, what: str) -> bytes:
    try:
        return json.dumps(obj, indent=2).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what}: expected JSON-serializable values (numbers, strings, lists, dicts), {e}") from e


def _tag_files_re(tag: str) -> re.Pattern:
    """``{tag}-{save_id}.safetensors`` / ``{tag}-{save_id}.optim.safetensors``; group 1 = the stem."""
    return re.compile(rf"({re.escape(tag)}-{_ID})(?:\.optim)?\.safetensors")


def _sweep(path_dir: Path, tag: str) -> None:
    """Best effort: delete this tag's files that ``{tag}.json`` does not reference.

    Those are temp files and tensor files of crashed saves, and (after a commit) the
    previous save's tensor files. Never raises; never touches another tag's files."""
    try:
        names = set(os.listdir(path_dir))
    except OSError:
        return
    json_name = f"{tag}.json"
    keep: set | None = set()
    if json_name in names:
        try:
            keep = set(filter(None, _files_of(_read_record(path_dir / json_name), path_dir / json_name)))
        except (OSError, ValueError):
            keep = None  # unreadable marker: don't guess, delete only temp files
    tmp_re = re.compile(rf"\.{re.escape(tag)}(?:\.json|(?:-{_ID})?(?:\.optim)?\.safetensors)\..+\.tmp")
    new_re = _tag_files_re(tag)
    legacy = {f"{tag}.safetensors", f"{tag}.optim.safetensors"}
    for name in sorted(names):
        if tmp_re.fullmatch(name):
            pass
        elif keep is None or name in keep:
            continue
        elif m := new_re.fullmatch(name):
            if f"{m.group(1)}.json" in names:  # a format-1 file of another tag named like ours
                continue
        elif not (name in legacy and json_name in names):  # format-1 files go once a new marker exists
            continue
        try:
            os.unlink(path_dir / name)
        except OSError:
            pass


def _save(path_dir, model, *, model_config, train_state=None, optimizer=None, tag="last", dtype=None,
          extra: dict | None = None) -> Path:
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(model_config, dict):
        raise ValueError(f"model_config: expected a dict (e.g. config.to_dict()), got {type(model_config).__name__}")
    if train_state is not None and not isinstance(train_state, dict):
        raise ValueError(f"train_state: expected a dict or None, got {type(train_state).__name__}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer: expected a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
    _check_tag(tag)
    if dtype not in _STORE_DTYPES:
        raise ValueError(f"dtype: expected None, torch.float32, torch.bfloat16 or torch.float16, got {dtype!r}")
    if extra is not None and not isinstance(extra, dict):
        raise ValueError(f"extra: expected a dict or None, got {type(extra).__name__}")
    path_dir = Path(path_dir)
    if path_dir.exists() and not path_dir.is_dir():
        raise ValueError(f"path_dir: {path_dir} exists and is not a directory")

    save_id = secrets.token_hex(8)
    meta = {"format": FORMAT, "save_id": save_id}
    model_name = f"{tag}-{save_id}{_SUFFIX}"
    optim_name = f"{tag}-{save_id}.optim{_SUFFIX}" if optimizer is not None else None

    # model tensors: shared storage stored once, floats optionally down-cast
    unique, aliases = _dedup_shared(model.state_dict())
    orig_dtypes = {name: str(t.dtype).removeprefix("torch.") for name, t in unique.items()}
    tensors = {}
    for name, t in unique.items():
        t = t.detach().cpu()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        tensors[name] = t.contiguous()
    model_bytes = safetensors_save(tensors, metadata={**meta, "kind": "model"})

    # optimizer: tensors to safetensors, the rest (step counts as ints, hyperparameters) to JSON
    optim_json, optim_bytes = None, None
    if optimizer is not None:
        opt_tensors, optim_json = _flatten_optimizer(optimizer.state_dict())
        optim_bytes = safetensors_save(opt_tensors, metadata={**meta, "kind": "optimizer"})

    record = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "save_id": save_id, "tag": tag,
        "files": {"model": model_name, "optimizer": optim_name},
        "created_unix": time.time(), "torch_version": torch.__version__,
        "model_config": model_config, "train_state": train_state,
        "tied": aliases, "dtypes": orig_dtypes, "stored_dtype": _STORE_DTYPES[dtype],
        "optimizer": optim_json,
    }
    clash = sorted(set(extra or {}) & set(record))
    if clash:
        raise ValueError(f"extra: keys {clash} are reserved for the checkpoint format")
    record.update(extra or {})
    json_bytes = _json_bytes(record, "model_config/train_state/optimizer/extra")  # fail before touching any file

    path_dir.mkdir(parents=True, exist_ok=True)
    _sweep(path_dir, tag)                              # leftovers of earlier crashed saves
    _atomic_write(path_dir / model_name, model_bytes)  # new names: the current set stays intact
    if optim_bytes is not None:
        _atomic_write(path_dir / optim_name, optim_bytes)
    _fsync_dir(path_dir)                               # tensor files durable before the marker names them
    _atomic_write(path_dir / f"{tag}.json", json_bytes)  # the commit marker, last
    _fsync_dir(path_dir)
    _sweep(path_dir, tag)                              # the previous save's files, now unreferenced
    return path_dir / f"{tag}.json"


def save_checkpoint(path_dir, model: torch.nn.Module, *, model_config: dict, train_state: dict | None = None,
                    optimizer: torch.optim.Optimizer | None = None, tag: str = "last",
                    dtype: torch.dtype | None = None) -> Path:
    """Write ``{tag}-{id}.safetensors``, ``{tag}-{id}.optim.safetensors`` (if optimizer), then ``{tag}.json``.

    Crash-safe for the same tag: until the new ``{tag}.json`` is in place the previous
    checkpoint of this tag stays loadable. dtype: store floating-point model weights in
    this dtype (e.g. torch.bfloat16 halves the file); ``load_checkpoint`` casts them back
    to their original dtype. The optimizer state is always stored exactly. Returns the JSON path."""
    return _save(path_dir, model, model_config=model_config, train_state=train_state, optimizer=optimizer,
                 tag=tag, dtype=dtype)


def export_model(src_dir, dst_dir, *, tag: str = "best", dst_tag: str = "model",
                 dtype: torch.dtype | None = torch.bfloat16, extra: dict | None = None) -> Path:
    """Turn a training checkpoint into a compact weights-only one (e.g. to ship it).

    Loads ``tag`` from ``src_dir`` (the optimizer state is not even read), writes the
    weights in ``dtype`` as ``dst_tag`` in ``dst_dir`` with no optimizer state, and merges
    ``extra`` (JSON values, e.g. {"model_card": {...}}) into its JSON; ``load_checkpoint``
    returns those keys in ``metadata``. Returns the new JSON path."""
    if extra is not None and not isinstance(extra, dict):
        raise ValueError(f"extra: expected a dict or None, got {type(extra).__name__}")
    if extra and "exported_from" in extra:
        raise ValueError("extra: key 'exported_from' is reserved for the checkpoint format")
    _check_tag(dst_tag, "dst_tag")
    ckpt = _load(src_dir, tag, "cpu", with_optimizer=False)
    model = _build_model(ckpt, "cpu")
    provenance = {"tag": ckpt["metadata"]["tag"], "save_id": ckpt["metadata"]["save_id"],
                  "format_version": ckpt["metadata"]["format_version"]}
    return _save(dst_dir, model, model_config=ckpt["model_config"], train_state=ckpt["train_state"],
                 tag=dst_tag, dtype=dtype, extra={**(extra or {}), "exported_from": provenance})


__all__ = ["save_checkpoint", "load_checkpoint", "load_model", "export_model", "check_state_dict"]
