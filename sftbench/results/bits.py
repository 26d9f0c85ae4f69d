"""Which test examples a model got right: the bits behind McNemar's paired test and the seed-level
checks, packed and bounded by the bytes that hold them (a record is a file that travels)."""
from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class PerExample(BaseModel):
    """Which test examples the model got right, in test-split order: packed bits, base64
    (1.3 kB per 10k examples), with a digest of the test split's content and order, so two
    records are paired example by example only when they scored the very same split."""

    model_config = ConfigDict(extra="ignore")
    test_digest: str
    n: int = Field(ge=0)
    correct: str

    @model_validator(mode="after")
    def _bits_hold_n(self) -> "PerExample":
        """`n` is bounded by the bytes that hold the bits: a 504-byte record cannot ask for 10**11 of them."""
        try:
            size = len(base64.b64decode(self.correct, validate=True))
        except (binascii.Error, ValueError):
            raise ValueError("`correct` is not base64") from None
        if not (size == 0 and self.n == 0) and not 8 * size - 7 <= self.n <= 8 * size:
            raise ValueError(f"n = {self.n} examples cannot be held by {size} byte(s) of bits "
                             f"(from {max(0, 8 * size - 7)} to {8 * size})")
        return self

    @classmethod
    def from_bools(cls, correct: Any, test_digest: str) -> "PerExample":
        bits = np.packbits(np.asarray(correct, dtype=bool))
        return cls(test_digest=test_digest, n=len(correct), correct=base64.b64encode(bits.tobytes()).decode())

    def bools(self) -> np.ndarray:
        bits = np.frombuffer(base64.b64decode(self.correct), dtype=np.uint8)
        return np.unpackbits(bits, count=self.n).astype(bool)
