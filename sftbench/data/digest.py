"""Content hashes of tensors: dataset splits and backbone states key the feature cache."""
from __future__ import annotations

import hashlib

import torch


def tensor_digest(tensors: list[tuple[str, torch.Tensor]]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in tensors:
        t = tensor.detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
