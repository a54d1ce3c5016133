"""Text offline, tokenized: CPython's ``pydoc_data.topics`` cut into passages, split once for good.

Passages are whole paragraphs of the Python reference topics, in a fixed order; a fixed seed
shuffles them and the first ``n`` go to calibration, the last ``m`` to evaluation, disjoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InfersimError

SEQ_LEN = 128
SEED = 0
MIN_PASSAGE_CHARS = 200


def passages() -> list[str]:
    """Paragraphs of at least 200 characters from ``pydoc_data.topics`` (about 465K characters)."""
    from pydoc_data.topics import topics

    out = []
    for key in sorted(topics):
        for para in re.split(r"\n\s*\n", topics[key]):
            text = " ".join(para.split())
            if len(text) >= MIN_PASSAGE_CHARS:
                out.append(text)
    return out


@dataclass(frozen=True)
class Tokens:
    ids: np.ndarray  # (n, SEQ_LEN) int64
    mask: np.ndarray  # (n, SEQ_LEN) float32

    def __len__(self) -> int:
        return len(self.ids)


def tokenize(model_dir: Path, texts: list[str], seq_len: int = SEQ_LEN) -> Tokens:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(seq_len)
    tok.enable_padding(length=seq_len, pad_id=0)
    enc = tok.encode_batch(texts)
    return Tokens(np.array([e.ids for e in enc], dtype=np.int64),
                  np.array([e.attention_mask for e in enc], dtype=np.float32))


def split(model_dir: Path, calib: int, evaluate: int, seed: int = SEED) -> tuple[Tokens, Tokens]:
    """Disjoint calibration and evaluation passages, tokenized to ``SEQ_LEN``."""
    texts = passages()
    if calib < 1 or evaluate < 2:
        raise InfersimError(f"calibration needs >= 1 passage and evaluation >= 2, got {calib} and {evaluate}")
    if calib + evaluate > len(texts):
        raise InfersimError(f"calibration text too short: {calib} calibration + {evaluate} evaluation passages "
                            f"asked, pydoc_data.topics has {len(texts)} passages of >= {MIN_PASSAGE_CHARS} characters")
    order = np.random.default_rng(seed).permutation(len(texts))
    picked = [texts[i] for i in order]
    return tokenize(model_dir, picked[:calib]), tokenize(model_dir, picked[-evaluate:])
