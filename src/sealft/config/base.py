"""What every config shares: strict models (unknown keys and ill-typed values are errors
that name the key) and the error the loader raises."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class ConfigError(ValueError):
    pass


# What a training loop does with a NaN or infinite per-sample loss.
NonFinite = Literal["stop", "skip"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
