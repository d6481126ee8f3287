"""Batch shape from free GPU memory (the legal LoRA guide's table as the default policy)."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import BaseModel, ConfigDict

from geomas.config import MemoryProfile, TrainSFTConfig

logger = logging.getLogger(__name__)

GB = 1024**3


class BatchDecision(BaseModel):
    """The per-device batch size and gradient accumulation a run uses, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int
    gradient_accumulation_steps: int
    source: Literal["config", "memory_profile", "cpu_default"]
    device: Literal["cpu", "cuda"]
    free_vram_gb: float | None = None
    tier_below_gb: float | None = None

    @property
    def effective_batch_size(self) -> int:
        """Examples per optimizer step on one device."""
        return self.batch_size * self.gradient_accumulation_steps


def pick_batch(profile: MemoryProfile, free_vram_bytes: int | None) -> BatchDecision:
    """Apply the memory policy (pure function).

    Args:
        profile: The policy table and the CPU default.
        free_vram_bytes: Free memory of the training GPU; ``None``: training on CPU.

    Returns:
        The first tier whose ``below_gb`` exceeds the free VRAM (the last tier has no bound),
        or the profile's CPU default.
    """
    if free_vram_bytes is None:
        return BatchDecision(
            batch_size=profile.cpu_batch_size,
            gradient_accumulation_steps=profile.cpu_gradient_accumulation_steps,
            source="cpu_default",
            device="cpu",
        )
    free_gb = free_vram_bytes / GB
    for tier in profile.tiers:
        if tier.below_gb is None or free_gb < tier.below_gb:
            return BatchDecision(
                batch_size=tier.batch_size,
                gradient_accumulation_steps=tier.gradient_accumulation_steps,
                source="memory_profile",
                device="cuda",
                free_vram_gb=round(free_gb, 2),
                tier_below_gb=tier.below_gb,
            )
    raise AssertionError("MemoryProfile guarantees an unbounded last tier")  # pragma: no cover


def decide_batch(config: TrainSFTConfig, device: Literal["cpu", "cuda"]) -> BatchDecision:
    """The batch shape for ``config`` on ``device`` (reads free VRAM when batch_size is auto)."""
    if config.per_device_train_batch_size != "auto":
        return BatchDecision(
            batch_size=config.per_device_train_batch_size,
            gradient_accumulation_steps=config.gradient_accumulation_steps or 1,
            source="config",
            device=device,
        )
    free: int | None = None
    if device == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info()
    decision = pick_batch(config.memory_profile, free)
    logger.info("batch_size auto on %s (free VRAM %s GB): %d x %d", device,
                decision.free_vram_gb, decision.batch_size, decision.gradient_accumulation_steps)
    return decision
