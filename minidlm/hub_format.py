"""minidlm models in the Hugging Face Hub layout (appendix A1, "From toy to real").

A model folder (or Hub repo) in this layout holds

* ``config.json``        the ``ModelConfig`` fields, the special-token ids (``mask_token_id`` ...) and a
                         ``"minidlm"`` entry: the objective and the training state (step, train config);
* ``model.safetensors``  the weights, written by ``huggingface_hub``'s ``PyTorchModelHubMixin`` (tied
                         embeddings are stored once under one name; loading re-ties them);
* ``tokenizer.json``     the tokenizer (its special tokens ``[PAD] [BOS] [EOS] [MASK] [UNK]``);
* ``card.json``          the training card, when there is one, and ``README.md``, a model card made from it.

``HubModel`` is ``Model`` plus the mixin, so ``HubModel.from_pretrained(folder_or_id)``,
``model.save_pretrained(folder)`` and ``model.push_to_hub("owner/name")`` are the mixin's.
``push_to_hub`` needs the network and a token: nothing in minidlm's tests calls it.
Loading a Hub id with ``HF_HUB_OFFLINE=1`` reads the local cache only and fails with one line naming
the id when there is no cached copy. minidlm's own safe format (checkpoint.py) stays the format of
training runs (optimizer state, resume); this layout is for sharing a trained model.
"""
# no ``from __future__ import annotations``: the mixin inspects HubModel.__init__'s signature at runtime
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from huggingface_hub import ModelCard, ModelCardData, PyTorchModelHubMixin, constants, hf_hub_download
from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError,
                                    OfflineModeIsEnabled, RepositoryNotFoundError, RevisionNotFoundError)
from safetensors.torch import load_file

from .model import Model, ModelConfig

FORMAT = "minidlm-hub"
FORMAT_VERSION = 1
CONFIG, WEIGHTS, TOKENIZER, CARD = "config.json", "model.safetensors", "tokenizer.json", "card.json"
README = "README.md"
LAYOUT = (CONFIG, WEIGHTS, TOKENIZER, CARD, README)     # every file an export writes
TIED = ("tok_emb.weight", "lm_head.weight")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")
OBJECTIVE_TAGS = {"ar": "autoregressive", "mdm": "masked-diffusion", "esolm": "esoteric-language-model",
                  "bd3lm": "block-diffusion", "udlm": "uniform-state-diffusion"}


# ----------------------------------------------------------------------------- where the files are

def looks_like_hub_id(text) -> bool:
    """True for ``owner/name`` (one slash, Hub-legal characters); says nothing about whether it exists."""
    return isinstance(text, str) and bool(_HUB_ID.fullmatch(text)) and ".." not in text and "--" not in text


def is_hub_folder(path) -> bool:
    """A local folder with ``config.json`` and ``model.safetensors``."""
    p = Path(path)
    return p.is_dir() and (p / CONFIG).is_file() and (p / WEIGHTS).is_file()


def _offline() -> bool:
    """HF_HUB_OFFLINE read now (huggingface_hub reads it once, at import)."""
    flag = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").strip().upper()
    return flag in ("1", "ON", "YES", "TRUE") or bool(constants.HF_HUB_OFFLINE)


def _cache_dir(cache_dir):
    """``cache_dir``, else ``$HF_HUB_CACHE``, else ``$HF_HOME/hub`` as set now, else the library's default."""
    if cache_dir is not None:
        return str(cache_dir)
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return os.path.join(os.environ["HF_HOME"], "hub") if os.environ.get("HF_HOME") else None


def _not_found(source: str, e: Exception) -> FileNotFoundError:
    """One line for a Hub id that could not be had (no traceback wall from huggingface_hub)."""
    if isinstance(e, (RepositoryNotFoundError, RevisionNotFoundError)):
        return FileNotFoundError(f"folder_or_id: {source!r} is neither a local folder nor a Hub model repo "
                                 f"(the Hub has no such repo or revision, or it is private)")
    why = "offline (HF_HUB_OFFLINE=1)" if _offline() else "the Hub could not be reached"
    return FileNotFoundError(f"folder_or_id: no local folder {source!r}, and no cached copy of the Hub model "
                             f"{source!r}: {why}; download it once online (hf download {source})")


def snapshot_folder(source: str, *, revision=None, cache_dir=None, force_download=False, token=None,
                    local_files_only=False) -> Path:
    """The local folder holding ``source``'s files: the folder itself, or the Hub cache's snapshot of the id
    (config.json and model.safetensors required, tokenizer.json and card.json fetched when the repo has them)."""
    p = Path(source).expanduser()
    if p.is_dir():
        if not is_hub_folder(p):
            raise ValueError(f"folder_or_id: {source} is not a Hub-layout folder (expected {CONFIG} and {WEIGHTS}; "
                             f"a minidlm training checkpoint loads with minidlm.checkpoint.load_model)")
        return p
    if p.exists():
        raise ValueError(f"folder_or_id: expected a folder or a Hub id 'owner/name', but {source} is a file")
    if not looks_like_hub_id(source):
        raise FileNotFoundError(f"folder_or_id: no such folder {source!r}, and it is not a Hub id 'owner/name'")
    kw = dict(repo_id=source, revision=revision, cache_dir=_cache_dir(cache_dir), force_download=force_download,
              token=token, local_files_only=local_files_only or _offline())
    try:
        folder = Path(hf_hub_download(filename=CONFIG, **kw)).parent
        hf_hub_download(filename=WEIGHTS, **kw)
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, RepositoryNotFoundError, RevisionNotFoundError) as e:
        raise _not_found(source, e) from None
    except EntryNotFoundError:
        raise ValueError(f"folder_or_id: the Hub repo {source!r} is not a minidlm model "
                         f"(no {CONFIG} or {WEIGHTS})") from None
    except HfHubHTTPError as e:                             # gated, server errors: the first line says which
        raise FileNotFoundError(f"folder_or_id: the Hub did not give {source!r}: {str(e).splitlines()[0]}") from None
    for optional in (TOKENIZER, CARD):
        try:
            hf_hub_download(filename=optional, **kw)
        except (EntryNotFoundError, HfHubHTTPError, OfflineModeIsEnabled):
            pass                                            # not in the repo (or not cached): loads without it
    return folder


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"folder_or_id: {path} is not a JSON file ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"folder_or_id: {path} holds no JSON object ({what})")
    return data


def _model_config(config: dict, source: str) -> ModelConfig:
    """ModelConfig from config.json's fields (the other keys are the token ids and minidlm's metadata)."""
    meta = config.get("minidlm")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"folder_or_id: {source} has a {CONFIG} without \"minidlm\": {{\"format\": \"{FORMAT}\"}}; "
                         f"not a minidlm model")
    if not isinstance(meta.get("format_version"), int) or meta["format_version"] > FORMAT_VERSION:
        raise ValueError(f"folder_or_id: {source}: format_version {meta.get('format_version')!r} is newer than this "
                         f"minidlm understands ({FORMAT_VERSION})")
    fields = set(ModelConfig.__dataclass_fields__)
    return ModelConfig.from_dict({k: v for k, v in config.items() if k in fields})


def _retie(state_dict: dict, cfg: ModelConfig, source: str) -> dict:
    """Tied embeddings are stored under one of their two names: put the tensor back under both."""
    if cfg.tie_embeddings:
        present = [n for n in TIED if n in state_dict]
        if len(present) == 1:
            state_dict[TIED[1 - TIED.index(present[0])]] = state_dict[present[0]]
        elif len(present) == 2 and not torch.equal(*(state_dict[n] for n in TIED)):
            raise ValueError(f"folder_or_id: {source} has tie_embeddings=true but different {TIED[0]} and {TIED[1]}")
    return state_dict


# ----------------------------------------------------------------------------- the model card

def _num(x, spec: str) -> str:
    return format(x, spec) if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


def card_markdown(card: dict, cfg: ModelConfig, objective: str | None, repo_id: str | None = None) -> str:
    """README.md's body from a training card (card.json): name, objective, size, val loss, command, note, machine."""
    name = card.get("name") or "a minidlm model"
    objective = objective or card.get("objective") or "?"
    kind = OBJECTIVE_TAGS.get(objective, objective).replace("-", " ")
    rows = [("objective", f"{objective} ({kind})")]
    if "params" in card:
        rows.append(("parameters", f"{_num(card['params'], ',')}"))
    if "val_loss" in card:
        label = "validation cross-entropy" if objective == "ar" else "validation NELBO (a bound)"
        note = card.get("val_loss_note")
        rows.append((label, f"{_num(card['val_loss'], '.4f')} " + (f"({note})" if note else "nats/token")))
    if "floor_nats_per_token" in card:
        rows.append(("entropy floor of the data", f"{_num(card['floor_nats_per_token'], '.4f')} nats/token"
                     + (f" (gap {_num(card['gap_to_floor'], '.4f')})" if "gap_to_floor" in card else "")))
    if "steps" in card:
        rows.append(("training", f"{card['steps']} steps" + "".join(
            f", {label} {_num(card[k], ',')}" for k, label in (("batch_size", "batch"), ("seq_len", "tokens per row"),
                                                                  ("train_tokens", "tokens in all")) if k in card)
            + (f", {_num(card['wall_time_s'] / 60, '.0f')} minutes" if isinstance(card.get("wall_time_s"), (int, float))
               else "")))
    if "machine" in card:
        rows.append(("machine", str(card["machine"])))
    where = repo_id or "OWNER/NAME"
    lines = [f"# {name}", "", f"A {kind} language model trained with minidlm, the package of a course that teaches "
             "diffusion language models by building one.", "", "| | |", "|---|---|",
             *(f"| {k} | {str(v).replace('|', '/')} |" for k, v in rows), ""]
    if card.get("command"):
        lines += ["## Training command", "", "```bash", str(card["command"]), "```", ""]
    if card.get("note"):
        lines += ["## Note", "", str(card["note"]), ""]
    lines += ["## Use", "", "```python", "from minidlm.hub_format import load_pretrained",
              f'model, info = load_pretrained("{where}")   # or the local folder', "```", "", "```bash",
              f"python -m minidlm sample --ckpt {where}", "```", "", "## Config", "", "```json",
              json.dumps({f: getattr(cfg, f) for f in ModelConfig.__dataclass_fields__}, indent=2), "```", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the model class

class HubModel(Model, PyTorchModelHubMixin, library_name="minidlm", tags=["minidlm"],
               pipeline_tag="text-generation"):
    """``Model`` with the Hub mixin: ``from_pretrained``, ``save_pretrained``, ``push_to_hub`` (appendix A1).

    ``hub_tokenizer`` (a minidlm tokenizer or its tokenizer.json path), ``hub_card`` (card.json's dict) and
    ``hub_meta`` (objective, train state) travel with the weights: ``save_pretrained`` and ``push_to_hub`` (the
    network and a token; never called in the tests) write them too."""

    def __init__(self, config):  # not annotated: the mixin then hands _from_pretrained config.json as it is
        super().__init__(config)
        self.hub_tokenizer, self.hub_card, self.hub_meta = None, None, {}

    # --- saving (the mixin's save_pretrained calls these)
    def _tokenizer(self):
        """hub_tokenizer as a minidlm tokenizer (it may be held as a tokenizer.json path), or None."""
        if self.hub_tokenizer is None or hasattr(self.hub_tokenizer, "save"):
            return self.hub_tokenizer
        from .tokenizer import load_tokenizer
        return load_tokenizer(self.hub_tokenizer)

    def hub_config(self) -> dict:
        """config.json: every ModelConfig field, the special-token ids, and minidlm's metadata."""
        config = {f: getattr(self.config, f) for f in ModelConfig.__dataclass_fields__}
        config["model_type"] = "minidlm"
        config["mask_token_id"] = self.config.mask_id
        if (tok := self._tokenizer()) is not None:
            config.update(pad_token_id=tok.pad_id, bos_token_id=tok.bos_id, eos_token_id=tok.eos_id,
                          unk_token_id=tok.unk_id)
        config["minidlm"] = {"format": FORMAT, "format_version": FORMAT_VERSION, **self.hub_meta}
        return config

    def _save_pretrained(self, save_directory: Path) -> None:
        super()._save_pretrained(save_directory)           # model.safetensors (safetensors' save_model: ties kept once)
        (save_directory / CONFIG).write_text(json.dumps(self.hub_config(), indent=2, sort_keys=True) + "\n")
        if (tok := self._tokenizer()) is not None:
            tok.save(save_directory / TOKENIZER)
        if self.hub_card is not None:
            (save_directory / CARD).write_text(json.dumps(self.hub_card, indent=1) + "\n")

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        """README.md: YAML front matter (library_name, tags) and the training card's numbers."""
        objective = self.hub_meta.get("objective")
        tags = {*(self._hub_mixin_info.model_card_data.tags or []), OBJECTIVE_TAGS.get(objective, "minidlm")}
        tags = sorted(tags)
        data = ModelCardData(library_name="minidlm", tags=tags, pipeline_tag="text-generation")
        body = card_markdown(self.hub_card or {}, self.config, objective, kwargs.get("repo_id"))
        return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")

    # --- loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, local_files_only: bool = False, cache_dir=None,
                        **kwargs) -> "HubModel":
        """The mixin's ``from_pretrained`` (a folder or ``owner/name``; ``map_location="cpu"``), offline-aware:
        with HF_HUB_OFFLINE=1 only the cache is read, and a missing copy is one FileNotFoundError naming the id."""
        source = str(pretrained_model_name_or_path)
        if os.path.exists(source) or not looks_like_hub_id(source):
            snapshot_folder(source)                         # a local folder: its one-line errors, no mixin warning
        try:
            return super().from_pretrained(source, local_files_only=local_files_only or _offline(),
                                           cache_dir=_cache_dir(cache_dir), **kwargs)
        except (LocalEntryNotFoundError, OfflineModeIsEnabled, RepositoryNotFoundError, RevisionNotFoundError) as e:
            raise _not_found(source, e) from None

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision, cache_dir, force_download: bool, local_files_only: bool,
                         token, config=None, map_location="cpu", **model_kwargs) -> "HubModel":
        if model_kwargs:
            raise ValueError(f"model_kwargs: HubModel.from_pretrained takes map_location only, "
                             f"got {sorted(model_kwargs)}")
        folder = snapshot_folder(model_id, revision=revision, cache_dir=cache_dir, force_download=force_download,
                                 token=token, local_files_only=local_files_only)
        if not isinstance(config, dict):
            config = _read_json(folder / CONFIG, "the model config")
        cfg = _model_config(config, model_id)
        model = cls(cfg)
        try:
            state_dict = load_file(str(folder / WEIGHTS), device="cpu")
        except Exception as e:                              # safetensors raises its own error types
            raise ValueError(f"folder_or_id: {model_id}: {WEIGHTS} is not a readable safetensors file ({e})") from None
        from .checkpoint_read import check_state_dict
        state_dict = _retie(state_dict, cfg, model_id)
        check_state_dict(model, state_dict)
        model.load_state_dict(state_dict, strict=True)     # into tied parameters: the tie stays
        model.hub_meta = {k: v for k, v in config["minidlm"].items() if k not in ("format", "format_version")}
        if (folder / TOKENIZER).is_file():
            model.hub_tokenizer = folder / TOKENIZER
        if (folder / CARD).is_file():
            model.hub_card = _read_json(folder / CARD, "the training card")
        return model.to(map_location).eval()


# ----------------------------------------------------------------------------- functions

def to_hub_model(model: Model, *, tokenizer=None, card: dict | None = None, info: dict | None = None) -> HubModel:
    """A ``HubModel`` (on the CPU) with ``model``'s config and weights, ready for ``save_pretrained`` /
    ``push_to_hub``. tokenizer: a tokenizer.json path or a minidlm tokenizer; card: a training card (card.json's
    dict); info: ``load_model``'s info (its train_state is kept: step, train config, objective)."""
    if not isinstance(model, Model):
        raise ValueError(f"model: expected a minidlm Model, got {type(model).__name__}")
    if card is not None and not isinstance(card, dict):
        raise ValueError(f"card: expected a dict (card.json) or None, got {type(card).__name__}")
    if info is not None and not isinstance(info, dict):
        raise ValueError(f"info: expected load_model's info dict or None, got {type(info).__name__}")
    hub = HubModel(ModelConfig.from_dict(model.config.to_dict()))
    hub.load_state_dict(model.state_dict(), strict=True)
    train_state = (info or {}).get("train_state") or getattr(model, "hub_meta", {}).get("train_state")
    objective = ((train_state or {}).get("train_config") or {}).get("objective") or (card or {}).get("objective")
    hub.hub_meta = {"objective": objective or ("ar" if model.config.mask_id is None else "mdm"),
                    "train_state": train_state}
    hub.hub_card = card if card is not None else getattr(model, "hub_card", None)
    if tokenizer is None:
        tokenizer = getattr(model, "hub_tokenizer", None)
    if tokenizer is not None:
        from .tokenizer import load_tokenizer
        if isinstance(tokenizer, (str, os.PathLike)):
            tokenizer = load_tokenizer(tokenizer)           # checks the file and its special tokens
        elif not hasattr(tokenizer, "save") or not hasattr(tokenizer, "mask_id"):
            raise ValueError(f"tokenizer: expected a tokenizer.json path or a minidlm tokenizer, "
                             f"got {type(tokenizer).__name__}")
        if tokenizer.vocab_size > model.config.vocab_size:
            raise ValueError(f"tokenizer: {tokenizer.vocab_size} tokens, more than the model's vocab_size "
                             f"{model.config.vocab_size}")
        hub.hub_tokenizer = tokenizer
    return hub.eval()


def _check_out(folder: Path, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"out: {folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not overwrite:
            raise ValueError(f"out: {folder} exists and is not empty; pass overwrite=True (--overwrite) to replace "
                             f"an earlier export")
        if not is_hub_folder(folder) or any(p.name not in LAYOUT for p in folder.iterdir()):
            raise ValueError(f"out: {folder} holds files other than an export's ({', '.join(LAYOUT)}); "
                             f"refusing to replace it, choose another folder")


def save_pretrained(model: Model, folder, *, tokenizer=None, card: dict | None = None, info: dict | None = None,
                    overwrite: bool = False) -> Path:
    """Write ``model`` in the Hub layout (config.json, model.safetensors, tokenizer.json, card.json, README.md).

    The files are written into a temporary folder beside ``folder`` and moved into place at the end, so an
    interrupted export leaves no half folder. An existing non-empty ``folder`` is replaced only with
    ``overwrite=True`` and only when it holds an earlier export. Returns the folder."""
    folder = Path(folder).expanduser()
    _check_out(folder, overwrite)
    hub = to_hub_model(model, tokenizer=tokenizer, card=card, info=info)
    folder.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        hub.save_pretrained(stage)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(stage, folder)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    return folder


def export_checkpoint(ckpt, out, *, tag: str | None = None, overwrite: bool = False) -> Path:
    """A minidlm checkpoint folder (e.g. data/checkpoints/tales-mdm-nano or a run folder) -> the Hub layout in
    ``out``, with the folder's tokenizer.json and card.json (``python -m minidlm export``). Returns ``out``."""
    from .checkpoint_read import _tags_in, load_model
    src = Path(ckpt).expanduser()
    if not src.is_dir():
        raise FileNotFoundError(f"ckpt: no such checkpoint folder: {ckpt}")
    if not _tags_in(src):
        raise ValueError(f"ckpt: {ckpt} holds no minidlm checkpoint (a NAME.json beside NAME-*.safetensors)")
    out = Path(out).expanduser()
    if out.resolve() == src.resolve():
        raise ValueError(f"out: expected another folder than --ckpt, got {out}")
    if not (src / TOKENIZER).is_file():
        raise ValueError(f"ckpt: {ckpt} has no {TOKENIZER}: a Hub model needs its tokenizer")
    _check_out(out, overwrite)                              # before the (slower) load
    model, info = load_model(src, tag=tag)
    card = _read_json(src / CARD, "the training card") if (src / CARD).is_file() else None
    return save_pretrained(model, out, tokenizer=src / TOKENIZER, card=card, info=info, overwrite=overwrite)


def load_pretrained(folder_or_id, *, map_location="cpu", revision: str | None = None, cache_dir=None):
    """A Hub-layout folder or Hub id -> (model, info), like ``checkpoint.load_model``.

    info: ``model_config``, ``train_state`` (or None), ``optimizer_state`` (None), ``metadata`` (format, source,
    objective), ``folder`` (the local folder or cache snapshot), ``tokenizer`` (its tokenizer.json path or None)
    and ``card`` (card.json's dict or None). Offline (HF_HUB_OFFLINE=1) an id is read from the cache only."""
    if not isinstance(folder_or_id, (str, os.PathLike)):
        raise ValueError(f"folder_or_id: expected a folder path or a Hub id 'owner/name', got {folder_or_id!r}")
    source = os.fspath(folder_or_id)
    folder = snapshot_folder(source, revision=revision, cache_dir=cache_dir)
    model = HubModel.from_pretrained(folder, map_location=map_location)  # a local folder now: no network
    meta = model.hub_meta
    info = {"model_config": model.config.to_dict(), "train_state": meta.get("train_state"), "optimizer_state": None,
            "metadata": {"format": FORMAT, "source": source, "objective": meta.get("objective")},
            "folder": folder, "tokenizer": model.hub_tokenizer, "card": model.hub_card}
    return model, info


__all__ = ["HubModel", "to_hub_model", "save_pretrained", "export_checkpoint", "load_pretrained",
           "snapshot_folder", "is_hub_folder", "looks_like_hub_id"]
