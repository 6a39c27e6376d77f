"""Encoder cards: what a named encoder is (model source, variant, lengths, quantisation scale).

Cards are small TOML files in the repository's ``encoders/`` folder (carried inside the wheel as ``_cards``).
A trained checkpoint directory carries its own card, ``splade_card.toml``, so it works as ``--encoder DIR``.
A sentence-transformers SparseEncoder folder (``modules.json``) gets its card from its modules (:mod:`.st_bridge`).
Anything else is taken as a model source (a local directory or a Hugging Face id) with the SPLADE-v3 defaults.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

from .errors import SpladeError

VARIANTS = ("full", "lexical", "doc")
CARD_FILE = "splade_card.toml"
DEFAULT_SCALE = 51.2


@dataclass(frozen=True)
class EncoderCard:
    name: str
    model: str
    variant: str = "full"
    query_max_length: int = 256
    doc_max_length: int = 512
    scale: float = DEFAULT_SCALE
    description: str = ""
    query_weights: str = ""  # doc variant: a file of static per-token query weights (else each token weighs 1)

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise SpladeError(f"encoder card {self.name!r}: variant {self.variant!r} is not one of {', '.join(VARIANTS)}.")
        if not self.scale > 0:
            raise SpladeError(f"encoder card {self.name!r}: scale must be positive, got {self.scale}.")
        if self.query_weights and self.variant != "doc":
            raise SpladeError(f"encoder card {self.name!r}: query_weights apply to the doc variant only, not "
                              f"{self.variant!r}.")

    def to_dict(self) -> dict:
        return asdict(self)

    def to_toml(self) -> str:
        lines = []
        for key, value in asdict(self).items():
            if isinstance(value, str):
                value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            lines.append(f"{key} = {value}")
        return "\n".join(lines) + "\n"


def cards_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_cards", here.parent / "encoders"):
        if candidate.is_dir():
            return candidate
    raise SpladeError("the encoder cards (encoders/*.toml) are missing from this installation; reinstall splade-pyserini.")


def _read_card(path: Path, default_model: str | None = None) -> EncoderCard:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SpladeError(f"cannot read encoder card {path}: {e}.") from None
    if default_model is not None:
        data.setdefault("model", default_model)
        data.setdefault("name", Path(default_model).name)
    known = {f for f in EncoderCard.__dataclass_fields__}
    unknown = set(data) - known
    if unknown:
        raise SpladeError(f"encoder card {path} has unknown keys {sorted(unknown)}; allowed: {sorted(known)}.")
    if "name" not in data or "model" not in data:
        raise SpladeError(f"encoder card {path} needs at least `name` and `model`.")
    return EncoderCard(**data)


@lru_cache(maxsize=None)
def builtin_cards() -> dict[str, EncoderCard]:
    return {p.stem: _read_card(p) for p in sorted(cards_dir().glob("*.toml"))}


def is_card_name(name: str) -> bool:
    return name in builtin_cards()


def resolve_card(name_or_path: str | os.PathLike, **overrides) -> EncoderCard:
    """A card name, a checkpoint directory (with or without ``splade_card.toml``) or a Hugging Face id."""
    text = str(name_or_path)
    cards = builtin_cards()
    if text in cards:
        card = cards[text]
    elif os.path.isdir(text):
        path = Path(text).resolve()
        card_path = path / CARD_FILE
        card = _read_card(card_path, default_model=str(path)) if card_path.is_file() else None
        if card is None and (path / "modules.json").is_file():
            from .st_bridge import card_from_folder

            card = card_from_folder(path)
        elif card is None:
            if not (path / "config.json").is_file():
                raise SpladeError(
                    f"{text} is a directory but holds no model (config.json) and no {CARD_FILE}; "
                    "pass a model directory, a Hugging Face id or one of: " + ", ".join(cards) + "."
                )
            card = EncoderCard(name=path.name, model=str(path))
        elif not Path(card.model).is_absolute() and (path / card.model).exists():
            card = replace(card, model=str((path / card.model).resolve()))
        elif card.model in (".", ""):
            card = replace(card, model=str(path))
        if card.query_weights and not Path(card.query_weights).is_absolute():
            card = replace(card, query_weights=str(path / card.query_weights))
    elif os.path.exists(text) or text.startswith((".", "/", "~")):
        raise SpladeError(f"encoder path {text} does not exist; pass a model directory or one of: {', '.join(cards)}.")
    elif "/" in text and text.count("/") == 1 and not text.endswith("/"):
        card = EncoderCard(name=text, model=text)  # a Hugging Face id
    else:
        raise SpladeError(
            f"unknown encoder {text!r}: use one of {', '.join(cards)}, a local model directory, or a Hugging Face id "
            "(owner/name)."
        )
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides.get("variant", "doc") != "doc":
        overrides["query_weights"] = ""  # static query weights belong to the doc variant
    return replace(card, **overrides) if overrides else card
