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


#: tokens per window of the causal LM's calibration and evaluation streams
CAUSAL_SEQ_LEN = 256


def causal_split(tokenizer, calib: int, evaluate: int, seq_len: int = CAUSAL_SEQ_LEN,
                 seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Calibration and evaluation windows ``(n, seq_len)`` of token ids for a causal LM.

    The passages, shuffled with ``seed``, are split once in half: the first half is the calibration
    text, the second the held-out text (disjoint whatever the counts asked). Each half is joined with
    blank lines, tokenized as one stream and cut into consecutive windows of ``seq_len`` tokens; the
    first ``calib`` / ``evaluate`` windows are used."""
    texts = passages()
    if calib < 1 or evaluate < 1:
        raise InfersimError(f"calibration and evaluation need >= 1 window each, got {calib} and {evaluate}")
    order = np.random.default_rng(seed).permutation(len(texts))
    half = len(order) // 2
    out = []
    for what, picked, count in (("calibration", order[:half], calib), ("evaluation", order[half:], evaluate)):
        ids = tokenizer.encode("\n\n".join(texts[i] for i in picked)).ids
        have = len(ids) // seq_len
        if count > have:
            raise InfersimError(f"calibration text too short: {count} {what} windows of {seq_len} tokens asked, "
                                f"the {what} half of pydoc_data.topics has {have}")
        out.append(np.array(ids[:count * seq_len], dtype=np.int64).reshape(count, seq_len))
    return out[0], out[1]
