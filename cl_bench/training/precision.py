"""Mixed precision: ``torch.autocast`` around the forward pass (losses stay
float32), with a GradScaler for float16."""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch

# the autocast dtype of each name train.precision allows (cl_bench.config.PRECISIONS, checked when the config
# is loaded; tests/test_choices.py checks that every name has one)
DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class MixedPrecision:
    """``precision`` on ``device``: fp32 (no autocast), bf16 or fp16 (autocast; fp16 scales the loss)."""

    def __init__(self, precision: str, device: torch.device | str):
        if precision not in DTYPES:
            raise ValueError(f"unknown precision '{precision}' (known: {', '.join(DTYPES)})")
        self.dtype = DTYPES[precision]
        self.device_type = torch.device(device).type
        self.scaler = torch.amp.GradScaler(self.device_type) if self.dtype is torch.float16 else None

    def autocast(self) -> AbstractContextManager:
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None)

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward(**kwargs)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()
