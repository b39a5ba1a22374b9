"""What a run folder holds, and the rules that keep it safe (lesson 06).

A run folder (``train --out DIR``) holds checkpoints (``last``, ``best``: see checkpoint.py),
``log.jsonl`` and ``tokenizer.json``. A shipped model's folder holds a ``model`` checkpoint and
``card.json``. ``train`` follows three rules so that nothing is ever lost by accident:

1. A folder that already holds a run or a model is refused unless you say what you want:
   ``resume=True`` (go on from ``last``) or ``overwrite=True`` (start over in it).
2. Every check runs before the first byte is written: a refused run leaves DIR unchanged.
3. Ctrl-C (or a Jupyter "interrupt") stops the run at the end of the step and checkpoints it;
   a second Ctrl-C stops at once (the last checkpoint is still whole: checkpoint.py).
4. A resumed run cuts ``log.jsonl`` back to the step it resumes from, and says what differs
   from the run it continues (a new ``steps`` or ``lr`` changes the learning-rate schedule).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from ._atomic import atomic_write
from .checkpoint import _files_of, _read_record, _tag_files_re, _tags_in

RUN_TAGS = ("last", "best")          # the checkpoints train() writes
LOG = "log.jsonl"
TOKENIZER = "tokenizer.json"
CARD = "card.json"
# resumed settings that change what the remaining steps do, and how
_CHANGES = {
    "steps": "the learning-rate schedule (warm-up, then cosine down to the last step) is recomputed",
    "lr": "the learning-rate schedule is recomputed from the new peak",
    "warmup": "the learning-rate schedule is recomputed",
    "min_lr_ratio": "the learning-rate schedule is recomputed",
    "data": "the remaining steps draw their batches from other data",
    "seed": "the remaining steps draw other batches and other noise than the original run would",
    "batch_size": "the remaining steps see batches of another size",
    "schedule": "the remaining steps mask with another noise schedule",
}


def contents(out: Path) -> dict:
    """What ``out`` holds: {"tags": checkpoint tags, "log": bool, "tokenizer": bool, "card": bool}."""
    out = Path(out)
    if not out.is_dir():
        return {"tags": [], "log": False, "tokenizer": False, "card": False}
    return {"tags": _tags_in(out), "log": (out / LOG).exists(), "tokenizer": (out / TOKENIZER).exists(),
            "card": (out / CARD).exists()}


def _describe(held: dict) -> str:
    parts = [f"checkpoint{'s' if len(held['tags']) > 1 else ''} {', '.join(held['tags'])}"] if held["tags"] else []
    parts += [name for name, key in ((LOG, "log"), (TOKENIZER, "tokenizer"), (CARD, "card")) if held[key]]
    return ", ".join(parts)


def check_out(out, *, resume: bool, overwrite: bool) -> list[str]:
    """Refuse a run that would destroy what ``out`` holds (reads only). Returns notes to print.

    Raises ValueError naming ``out`` (a file; a run or model there without resume/overwrite) or
    ``resume`` (a folder that holds a model but no ``last`` checkpoint to go on from)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out: expected a run folder, but {out} is a file")
    if resume and overwrite:
        raise ValueError("overwrite: choose one of resume (go on from the last checkpoint) and overwrite "
                         "(start over), not both")
    held = contents(out)
    if resume:
        if "last" in held["tags"]:
            return []
        other = [t for t in held["tags"] if t not in RUN_TAGS] or (["card.json"] if held["card"] else [])
        if other:
            raise ValueError(f"resume: {out} holds a model ({_describe(held)}) but no 'last' checkpoint of a "
                             f"run to go on from; train into another folder, or pass overwrite to replace it")
        return [f"resume: no checkpoint in {out} yet (last.json not found): starting a fresh run"]
    if overwrite or not any(held.values()):
        return []
    raise ValueError(f"out: {out} already holds a run or a model ({_describe(held)}); go on from its last "
                     f"checkpoint with resume (--resume), start over in it with overwrite (--overwrite), or choose "
                     f"another folder")


def clear(out) -> None:
    """Remove a previous run's checkpoints and log from ``out`` (``overwrite``; after every check).
    Other files are left alone; the tokenizer is replaced by the new run's."""
    out = Path(out)
    for tag in contents(out)["tags"]:
        ours = _tag_files_re(tag)                            # {tag}-{save_id}[.optim].safetensors
        legacy = {f"{tag}.safetensors", f"{tag}.optim.safetensors"}
        try:
            files = set(filter(None, _files_of(_read_record(out / f"{tag}.json"), out / f"{tag}.json")))
        except (OSError, ValueError):
            files = set()
        (out / f"{tag}.json").unlink(missing_ok=True)          # the commit marker first: no half checkpoint
        for name in os.listdir(out):
            if name in files or name in legacy or ours.fullmatch(name):
                (out / name).unlink(missing_ok=True)
    (out / LOG).unlink(missing_ok=True)


def resume_changes(saved: dict, cfg: dict, step: int) -> list[str]:
    """One note per setting that differs from the run being resumed at ``step``, saying what changes."""
    notes = []
    for key, effect in _CHANGES.items():
        if key in saved and saved[key] != cfg.get(key):
            notes.append(f"resume: {key} was {saved[key]!r}, now {cfg.get(key)!r}: from step {step} on, {effect}")
    return notes


def trim_log(out, step: int) -> int:
    """Keep the records of ``log.jsonl`` up to ``step`` (a resumed run logs the later steps again).
    Returns how many records were dropped. Atomic: a crash leaves the old log or the new one."""
    path = Path(out) / LOG
    if not path.exists():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            keep = json.loads(line).get("step", 0) <= step
        except (ValueError, AttributeError):
            keep = False                                      # a line cut short by a crash
        if keep:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        atomic_write(path, lambda f: f.write("".join(line + "\n" for line in kept).encode("utf-8")))
    return dropped


def check_same_tokenizer(tok, out) -> None:
    """A resumed run must tokenize as the run it continues: ``tok`` saved must equal out/tokenizer.json."""
    saved = Path(out) / TOKENIZER
    if not saved.exists():
        return
    with tempfile.TemporaryDirectory() as tmp:
        tok.save(Path(tmp) / TOKENIZER)
        same = (Path(tmp) / TOKENIZER).read_bytes() == saved.read_bytes()
    if not same:
        raise ValueError(f"resume: the tokenizer of this run's data/tokenizer settings differs from {saved}, "
                         f"which the checkpoint was trained with; resume with the same --data and --tokenizer")


@contextmanager
def stop_on_interrupt():
    """Within the block, Ctrl-C sets ``state["asked"]`` instead of raising, so the loop can finish its
    step and save; a second Ctrl-C raises KeyboardInterrupt as usual. Yields ``state``."""
    state = {"asked": False}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def on_interrupt(signum, frame):
        if state["asked"]:
            raise KeyboardInterrupt
        state["asked"] = True
        print("\nminidlm train: stopping after this step and saving a checkpoint (Ctrl-C again to stop at once)",
              file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)
