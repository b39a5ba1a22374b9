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
"""
from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_save

from ._atomic import atomic_write


FORMAT = "minidlm-checkpoint"
FORMAT_VERSION = 2  # 2: tensor files named by save id and listed in the JSON
_STORE_DTYPES = {None: None, torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}
_MAX_HEADER = 100 * 2**20  # a safetensors JSON header larger than this is not one of ours
_ID = "[0-9a-f]{16}"       # save ids: secrets.token_hex(8)
_SUFFIX = ".safetensors"


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


def _check_tag(tag, what: str = "tag") -> None:
    if not isinstance(tag, str) or not tag or "/" in tag or "\\" in tag or tag.startswith(".") or "\0" in tag:
        raise ValueError(f"{what}: expected a plain file-name stem like 'last' or 'step-1000', got {tag!r}")


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


# ----------------------------------------------------------------------------- reading

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


def load_model(path_dir, tag: str | None = None, map_location="cpu"):
    """Build ``Model(ModelConfig.from_dict(...))`` and load its weights strictly.

    tag None: "last" if the folder has it, else the folder's only tag (e.g. "model" in a
    shipped ``data/checkpoints/NAME/``). Returns (model, info) where info is
    load_checkpoint's dict without ``state_dict``. The model is in eval mode on ``map_location``."""
    if tag is None:
        tag = "last"
        p = Path(path_dir)
        if p.is_dir() and not (p / "last.json").is_file() and len(tags := _tags_in(p)) == 1:
            tag = tags[0]
    ckpt = load_checkpoint(path_dir, tag=tag, map_location=map_location)
    return _build_model(ckpt, map_location), ckpt


__all__ = ["save_checkpoint", "load_checkpoint", "load_model", "export_model", "check_state_dict"]
