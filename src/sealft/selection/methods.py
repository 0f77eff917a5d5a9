"""The method table of `seal run`: what each compared method trains on.

Kept free of heavy imports: the config schema reads the method names from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """One row of the comparison.

    `ranking`: the scores table whose top p (or soft weights) it trains on; None trains on
    every sample. `soft`: weight every sample's loss instead of keeping a top p.
    `demonstrations`: add the SafeInstr safety demonstrations, never filtered.
    """

    name: str
    ranking: str | None = None
    soft: bool = False
    demonstrations: bool = False
    summary: str = ""
    needs: str | None = None  # the config section that must be set to run it

    @property
    def keeps_fraction(self) -> bool:
        """Keeps a fraction p of the data, so it gets one run per p."""
        return self.ranking is not None and not self.soft


TABLE: dict[str, Method] = {
    m.name: m
    for m in (
        Method("full", summary="every sample (the paper's Standard SFT)"),
        Method("random", "random", summary="a uniformly random p"),
        Method("dsir", "dsir", summary="the top p by DSIR importance weights"),
        Method("safeinstr", demonstrations=True, summary="every sample plus demonstrations"),
        Method("seal", "seal", summary="the selector's top p"),
        Method("seal+safeinstr", "seal", demonstrations=True, summary="top p plus demonstrations"),
        Method("frozen-loss", "frozen-loss", summary="the top p by the aligned model's loss"),
        Method("seal-soft", "seal", soft=True, summary="every sample, weighted by the selector"),
        Method(
            "implicit-reward",
            "implicit-reward",
            summary="the top p by log π_aligned(y|x) − log π_reference(y|x)",
            needs="reference_model",
        ),
        Method(
            "oracle",
            "oracle",
            summary="a random p of the samples not labelled harmful: the best any selector "
            "can do (a benchmark's upper bound, read from `labels`)",
            needs="labels",
        ),
        Method(
            "guard",
            "guard",
            summary="the top p by a safety classifier's probability of safe",
            needs="guard",
        ),
    )
}
METHODS = tuple(TABLE)
# What `seal run` compares when `methods` is not set: every method that needs no extra model.
DEFAULT_METHODS = tuple(name for name, m in TABLE.items() if m.needs is None)
# Methods that keep a fraction p of the data, and so get one row per p.
SELECTING = tuple(name for name, m in TABLE.items() if m.keeps_fraction)
# Rankings computed from the selector run.
SEAL_RANKED = tuple(name for name, m in TABLE.items() if m.ranking == "seal")
