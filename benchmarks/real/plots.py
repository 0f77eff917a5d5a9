"""The real-data benchmark's two pictures, drawn from benchmarks/results/real.json.

- `docs/img/real-ranking.png`: AUROC of ranking the harmful rows last against the harmful
  share (5, 10, 20%), one panel per harmful kind, one line per ranker that was measured at
  every share (mean over the seeds, bars at ± one std), and the 0.98 target.
- `docs/img/real-finetune.png`: refusal after fine-tuning against the harmful rows each
  model trained on, one point per (method, seed), one panel per (kind, share) cell, with
  a1's refusal before fine-tuning and the target 5 points under it. Where the points of a
  method sit shows what the tables spread over many rows: the seed moves refusal as much
  as the harmful rows do, and the rows with none (oracle) still lose refusal.
- `docs/img/real-paired.png`: SEAL minus random, `full` and the oracle (and the oracle
  minus random) in refusal points, each pair one mix and seed, pooled over the mixes of a
  harmful share with the mean and its 95% t-interval (`finetune.py --paired` as a picture).

    python benchmarks/real/plots.py            # after rank.py / finetune.py --quick

Only what real.json holds is drawn; nothing is computed again.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from data import KINDS, PCTS  # noqa: E402
from finetune import Arm, mean_interval, paired, runs_by_seed  # noqa: E402
from rank import RESULTS  # noqa: E402

from sealft.io import atomic_write  # noqa: E402

IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
TITLES = {"jbb": "JailbreakBench", "hh": "HH rejected", "self": "self-written"}
# The rankers of the ranking grid, in the order of BENCHMARKS.md's table.
RANKERS = ("seal-default", "implicit-reward", "frozen-loss", "dsir", "random")
AUROC_TARGET = 0.98
# Methods drawn in the fine-tune picture, each with its marker; others in the cell are left
# out (they would crowd the panels; the tables hold them).
METHODS = {
    "full": "s",
    "random": "o",
    "seal": "*",
    "oracle": "D",
    "seal+safeinstr": "P",
}
# finetune.py's experiments drawn, by the SEAL settings they ran (seal-paper has its own
# table: its ranking is at chance).
SETTINGS = {"seal-default": "pre-probe defaults", "seal-probe": "defaults"}
# How each picture names the SEAL settings (the paired one draws the paper's too).
PAIRED_SETTINGS = SETTINGS | {"seal-paper": "paper"}
REFUSAL_MARGIN = 5  # points under a1's refusal that the target allows


def ranking_figure(summary: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, len(KINDS), figsize=(4 * len(KINDS), 3.4), sharey=True)
    for ax, kind in zip(axes, KINDS, strict=True):
        for ranker in RANKERS:
            cells = [summary.get(f"{ranker}/{kind}/{pct}") for pct in PCTS]
            if any(c is None for c in cells):
                continue
            mean = [c["auroc"]["mean"] for c in cells]
            std = [c["auroc"]["std"] for c in cells]
            ax.errorbar(PCTS, mean, yerr=std, marker="o", capsize=3, label=ranker)
        ax.axhline(AUROC_TARGET, color="grey", linestyle="--", linewidth=1)
        ax.set_title(TITLES.get(kind, kind))
        ax.set_xticks(PCTS, [f"{p}%" for p in PCTS])
        ax.set_xlabel("harmful rows in the mix")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("AUROC, harmful ranked last")
    axes[-1].legend(fontsize=8, loc="lower right")
    fig.suptitle("Ranking the harmful rows last (quick mixes, 200 rows, mean ± std over seeds)")
    fig.tight_layout()
    save(fig, path)


def finetune_points(grid: dict) -> dict[tuple[str, int], dict]:
    """Per (kind, pct): a1's refusal, and (harmful trained, refusal %) per arm at p 0.8,
    one point per seed (`finetune.runs_by_seed`: a control that two experiments both ran
    counts once), for the METHODS and SETTINGS drawn."""
    cells: dict[tuple[str, int], dict] = {}
    for key, entry in grid.items():
        kind, pct, _, _ = key.split("/")
        cell = cells.setdefault((kind, int(pct)), {"aligned": None, "runs": {}})
        for r in entry.get("runs", []):
            if r["method"] == "aligned":
                cell["aligned"] = 100 * r["metrics"]["refusal_rate"]
    for (kind, pct, seed), runs in runs_by_seed(grid).items():
        for arm, r in runs.items():
            if arm.method not in METHODS or (arm.settings and arm.settings not in SETTINGS):
                continue
            point = (r["harmful_trained"], 100 * r["metrics"]["refusal_rate"])
            cells[kind, pct]["runs"].setdefault(arm, {})[seed] = point
    return cells


def shown_label(arm: Arm) -> str:
    """An arm as the pictures name it: its experiment named by the SEAL settings it ran."""
    if arm.settings is None:
        return arm.method
    return f"{arm.method} ({PAIRED_SETTINGS.get(arm.settings, arm.settings)})"


def finetune_figure(grid: dict, path: Path) -> None:
    cells = finetune_points(grid)
    pcts = sorted({pct for _, pct in cells})
    fig, axes = plt.subplots(
        len(pcts),
        len(KINDS),
        figsize=(4 * len(KINDS), 3.3 * len(pcts)),
        squeeze=False,
        sharey=True,
    )
    arms = sorted({arm for cell in cells.values() for arm in cell["runs"]}, key=shown_label)
    colours = {arm: f"C{i}" for i, arm in enumerate(arms)}
    for row, pct in enumerate(pcts):
        for ax, kind in zip(axes[row], KINDS, strict=True):
            cell = cells.get((kind, pct))
            if cell is None:
                ax.set_axis_off()
                continue
            for arm in sorted(cell["runs"], key=shown_label):
                points = cell["runs"][arm]
                xs, ys = zip(*points.values(), strict=True)
                marker = METHODS[arm.method]
                ax.scatter(xs, ys, marker=marker, s=45, alpha=0.8, color=colours[arm])
            if cell["aligned"] is not None:
                ax.axhline(cell["aligned"], color="black", linewidth=1)
                ax.axhline(cell["aligned"] - REFUSAL_MARGIN, color="grey", ls="--", lw=1)
            ax.set_title(f"{TITLES.get(kind, kind)}, {pct}% harmful")
            ax.set_xlabel("harmful rows trained")
            if kind == KINDS[0]:
                ax.set_ylabel("refusal, held-out harmful (%)")
            ax.grid(alpha=0.3)
    handles = [
        plt.Line2D([], [], ls="", marker=METHODS[a.method], color=colours[a], label=shown_label(a))
        for a in arms
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8)
    fig.suptitle(
        "After fine-tuning (p 0.8, one point per seed): a1 before (line), the target (dashed)"
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    save(fig, path)


def paired_figure(grid: dict, path: Path) -> None:
    """One row per comparison pooled over the mixes of a harmful share: each pair (mix,
    seed) a dot coloured by kind, the mean a black bar and its 95% t-interval a line."""
    rows = paired(grid)
    pooled = [r for r in rows if r["kind"] == "all"]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(pooled) + 1.6))
    for y, row in enumerate(pooled):
        for i, kind in enumerate(KINDS):
            for r in rows:
                if (r["kind"], r["pct"], r["a"], r["b"]) == (kind, row["pct"], row["a"], row["b"]):
                    ys = [y + 0.12 * (i - 1)] * len(r["diffs"])
                    ax.scatter(r["diffs"], ys, s=18, color=f"C{i}", alpha=0.8)
        mean, ci = mean_interval(row["diffs"])
        ax.plot([mean, mean], [y - 0.3, y + 0.3], color="black", lw=2)
        if ci:
            ax.plot(ci, [y, y], color="black", lw=1)
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(
        range(len(pooled)),
        [f"{shown_label(r['a'])} − {shown_label(r['b'])}, {r['pct']}%" for r in pooled],
        fontsize=8,
    )
    ax.invert_yaxis()
    ax.set_xlabel("refusal of A minus B, same mix and seed (points)")
    handles = [
        plt.Line2D([], [], ls="", marker="o", color=f"C{i}", label=TITLES.get(k, k))
        for i, k in enumerate(KINDS)
    ]
    ax.legend(handles=handles, fontsize=8, loc="lower right")
    ax.set_title("Paired by seed: mean (bar) and 95% t-interval (line) over every mix")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    save(fig, path)


def save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buf.getvalue())
    print(f"wrote {path}")


def main() -> None:
    saved = json.loads(RESULTS.read_text())
    ranking_figure(saved["ranking_summary"]["quick"], IMG / "real-ranking.png")
    finetune_figure(saved["finetune"]["quick"], IMG / "real-finetune.png")
    paired_figure(saved["finetune"]["quick"], IMG / "real-paired.png")


if __name__ == "__main__":
    main()
