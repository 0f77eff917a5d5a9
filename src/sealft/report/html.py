"""`seal report RUN_DIR`: one self-contained report.html (images inlined) plus the PNGs.

Works on a `seal run` folder (results.json) and on a `seal select` folder
(scores.parquet). Sections appear when their inputs exist: the results table, the
selector's weight histogram, score distributions by label (when the data carry labels),
the selection-sweep curve, training curves, and the highest- and lowest-ranked samples.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config import SelectRecipeConfig
from ..data import load_sources
from ..io import atomic_write, read_json, read_jsonl
from ..scores import read_scores
from ..selection.rankers import SELECTING
from .tables import format_cell, heading

TRUNCATE = 300
N_SAMPLES = 20
RENAMED_CURVES = {
    "safe_loss": "upper_loss",
    "finetune_loss": "lower_loss",
    "aux_finetune_loss": "aux_loss",
}
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f")


@dataclass
class Section:
    title: str
    body: str
    note: str = ""


@dataclass
class Report:
    title: str
    sections: list[Section] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "font.size": 9, "axes.spines.top": False})
    plt.rcParams.update({"axes.spines.right": False})
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _img(report: Report, name: str, png: bytes, alt: str) -> str:
    report.figures[name] = png
    data = base64.b64encode(png).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


# --------------------------------------------------------------------------- inputs


def _find_select_dir(run_dir: Path) -> Path | None:
    if (run_dir / "scores.parquet").exists() and (run_dir / "selector.safetensors").exists():
        return run_dir
    found = sorted(run_dir.glob("seed*/select/scores.parquet"))
    return found[0].parent if found else None


def _records(select_dir: Path) -> dict[int, dict]:
    """The selector's input rows, by index, from the data its config names."""
    try:
        cfg = SelectRecipeConfig.model_validate(
            yaml.safe_load((select_dir / "config.yaml").read_text(encoding="utf-8"))
        )
        loaded = load_sources(cfg.data)
    except Exception:  # the data may have moved since; the report then shows no text
        return {}
    return {
        s.index: {"prompt": s.prompt[-1]["content"], "response": s.response, **s.record}
        for s in loaded.samples
    }


def _labels(rows: list[dict], records: dict[int, dict], label: dict | None) -> list[int] | None:
    if not label or not records:
        return None
    out = []
    for r in rows:
        rec = records.get(r["index"])
        if rec is None or label["field"] not in rec:
            return None
        out.append(int(rec[label["field"]] in label["harmful"]))
    return out if 0 < sum(out) < len(out) else None


# --------------------------------------------------------------------------- sections


def results_section(results: dict) -> Section:
    summary = results["summary"]
    names = list(dict.fromkeys(k for row in summary for k in row["metrics"]))
    head = "".join(f"<th>{html.escape(heading(n))}</th>" for n in names)
    rows = []
    for row in summary:
        cells = "".join(
            f"<td>{format_cell(row['metrics'][n], n) if n in row['metrics'] else ''}</td>"
            for n in names
        )
        p = "" if row["p"] is None else f"{row['p']:g}"
        cls = ' class="ref"' if row["method"] in ("aligned", "full") else ""
        rows.append(
            f"<tr{cls}><th>{html.escape(row['method'])}</th><td>{p}</td>"
            f"<td>{row['seeds']}</td>{cells}</tr>"
        )
    seeds = sorted({r["seed"] for r in results["runs"] if r["seed"] is not None})
    body = (
        f'<table class="results"><thead><tr><th>method</th><th>p</th><th>seeds</th>{head}'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    spread = (
        f"Mean ± sample standard deviation over seeds {', '.join(map(str, seeds))}. "
        if len(seeds) > 1
        else f"One seed ({seeds[0] if seeds else '-'}): no spread to show. "
    )
    note = (
        spread + "<b>aligned</b> is the starting model, not fine-tuned; <b>full</b> fine-tunes on "
        "every sample and is the reference for win rates. Rates are percentages; losses "
        "are per-token negative log-likelihoods of held-out answers (lower is better; for "
        "safety loss, lower means the model still prefers to refuse)."
    )
    return Section("Results", body, note)


def _by_label_hist(ax, values: list[float], labels: list[int] | None) -> None:
    """One histogram, or one per label, each scaled to its own class so that a small
    harmful class stays visible next to a large benign one."""
    import numpy as np

    edges = np.histogram_bin_edges(values, bins=min(40, max(8, len(values) // 10)))
    if labels is None:
        ax.hist(values, bins=edges, color=PALETTE[0])
        ax.set_ylabel("samples")
        return
    for lab, name, color in ((0, "benign", PALETTE[0]), (1, "harmful", PALETTE[1])):
        part = [v for v, y in zip(values, labels, strict=True) if y == lab]
        ax.hist(
            part,
            bins=edges,
            weights=[1 / len(part)] * len(part),
            histtype="stepfilled",
            alpha=0.55,
            color=color,
            edgecolor=color,
            label=f"{name} ({len(part)})",
        )
    ax.set_ylabel("share of its class")
    ax.legend(frameon=False, loc="upper left")


def weights_section(report: Report, rows: list[dict], labels: list[int] | None) -> Section:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 2.8), layout="constrained")
    weights = [r["weight"] for r in rows]
    _by_label_hist(ax, weights, labels)
    ax.set_xlabel("selector weight (mean 1 under softmax)")
    img = _img(report, "weights.png", _png(fig), "histogram of selector weights")
    kept = sum(r["selected"] for r in rows)
    return Section(
        "Selector weights",
        img,
        f"{len(rows)} samples ranked; {kept} kept at the selector run's own p.",
    )


def scores_section(report: Report, rows: list[dict], labels: list[int]) -> Section:
    from sklearn.metrics import roc_auc_score

    plt = _plt()
    logits = [r["score"] for r in rows]
    auroc = roc_auc_score(labels, [-x for x in logits])
    fig, axes = plt.subplots(
        1, 2, figsize=(8.4, 2.8), gridspec_kw={"width_ratios": [3, 2]}, layout="constrained"
    )
    ax = axes[0]
    _by_label_hist(ax, logits, labels)
    ax.set_xlabel("selector logit (higher = kept first)")
    ax = axes[1]
    order = sorted(range(len(rows)), key=lambda i: rows[i]["rank"])
    n_h = sum(labels)
    xs, ys, seen = [0.0], [0.0], 0
    for k, i in enumerate(order, 1):
        seen += labels[i]
        xs.append(k / len(rows))
        ys.append(seen / n_h)
    ax.plot(xs, ys, color=PALETTE[1], label="harmful kept")
    ax.plot([0, 1], [0, 1], color="#999", linestyle=":", label="random")
    ax.set_xlabel("fraction of data kept (p)")
    ax.set_ylabel("fraction of harmful kept")
    ax.legend(frameon=False)
    img = _img(report, "scores_by_label.png", _png(fig), "selector scores by label")
    return Section(
        "Scores by label",
        img,
        f"AUROC of ranking the {n_h} harmful samples last: <b>{auroc:.3f}</b> "
        f"(0.5 is chance). Right: how many harmful samples survive as p grows.",
    )


def sweep_section(report: Report, summary: list[dict]) -> Section | None:
    ps = sorted({r["p"] for r in summary if r["p"] is not None})
    if len(ps) < 2:
        return None
    names = [
        n
        for n in ("refusal_rate", "safety_loss", "benign_loss", "win_rate", "over_refusal_rate")
        if any(n in r["metrics"] for r in summary)
    ][:3]
    plt = _plt()
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8), squeeze=False)
    methods = [m for m in SELECTING if any(r["method"] == m for r in summary)]
    for ax, name in zip(axes[0], names, strict=True):
        scale = 100.0 if name.endswith(("_rate", "_accuracy")) else 1.0
        for color, method in zip(PALETTE, methods, strict=False):
            pts = sorted(
                (r["p"], r["metrics"][name])
                for r in summary
                if r["method"] == method and r["p"] is not None and name in r["metrics"]
            )
            if pts:
                ax.errorbar(
                    [p for p, _ in pts],
                    [s["mean"] * scale for _, s in pts],
                    yerr=[s["std"] * scale for _, s in pts],
                    label=method,
                    color=color,
                    marker="o",
                    capsize=2,
                )
        for ref, style in (("full", "--"), ("aligned", ":")):
            for r in summary:
                if r["method"] == ref and name in r["metrics"]:
                    ax.axhline(
                        r["metrics"][name]["mean"] * scale,
                        color="#555",
                        linestyle=style,
                        label=ref,
                    )
        ax.set_xlabel("p (fraction kept)")
        ax.set_title(heading(name))
    axes[0][0].legend(frameon=False, fontsize=7)
    img = _img(report, "sweep.png", _png(fig), "selection sweep")
    return Section("Selection sweep", img, "Mean over seeds, bars one standard deviation.")


def curves_section(report: Report, select_dir: Path, run_dir: Path) -> Section | None:
    path = select_dir / "metrics.jsonl"
    if not path.exists():
        return None
    steps = read_jsonl(path)
    if not steps:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.0), layout="constrained")
    x = list(range(len(steps)))
    for key, color, label in (
        ("safe_loss", PALETTE[0], "θ on the safe set (upper level)"),
        ("finetune_loss", PALETTE[1], "θ on the fine-tuning data"),
        ("aux_finetune_loss", PALETTE[2], "auxiliary model θ̂ on the fine-tuning data"),
    ):
        # Runs of sealft 0.1 logged these under their old names.
        key = key if any(key in s for s in steps) else RENAMED_CURVES[key]
        pts = [(i, s[key]) for i, s in zip(x, steps, strict=True) if s.get(key) is not None]
        if pts:
            axes[0].plot(*zip(*_smooth(pts), strict=True), color=color, label=label)
    axes[0].set_xlabel("selector step")
    axes[0].set_ylabel("loss (smoothed)")
    axes[0].legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    axes[1].plot(x, [s["gamma"] for s in steps], color=PALETTE[3])
    axes[1].set_xlabel("selector step")
    axes[1].set_ylabel("penalty weight γ")
    fine = sorted(run_dir.glob("seed*/*/metrics.jsonl"))
    fine = [f for f in fine if f.parent.name != "select"][: len(PALETTE)]
    plotted = 0
    for color, f in zip(PALETTE, fine, strict=False):
        logs = read_jsonl(f)
        pts = [(r["step"], r["loss"]) for r in logs if "loss" in r]
        if pts:
            axes[2].plot(*zip(*pts, strict=True), color=color, label=f.parent.name, lw=1)
            plotted += 1
    if plotted:
        axes[2].set_xlabel("fine-tuning step")
        axes[2].set_ylabel("training loss")
        axes[2].legend(frameon=False, fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        axes[2].set_visible(False)
    img = _img(report, "training.png", _png(fig), "training curves")
    return Section(
        "Training curves",
        img,
        f"Left and middle: the selector ({html.escape(str(select_dir.relative_to(run_dir)))}"
        "), its losses smoothed over 9 steps and its penalty weight γ (the logits learn "
        "once γ > 0 or after warm-up). Right: the training loss of each fine-tune of the "
        "first seed.",
    )


def _smooth(points: list[tuple[int, float]], window: int = 9) -> list[tuple[int, float]]:
    out = []
    for i in range(len(points)):
        chunk = points[max(0, i - window + 1) : i + 1]
        out.append((points[i][0], sum(v for _, v in chunk) / len(chunk)))
    return out


def _cut(text: str) -> str:
    text = " ".join(str(text).split())
    return html.escape(text if len(text) <= TRUNCATE else text[:TRUNCATE] + " …")


def samples_section(rows: list[dict], records: dict[int, dict], labels) -> Section | None:
    if not records:
        return None
    by_rank = sorted(range(len(rows)), key=lambda i: rows[i]["rank"])

    def table(indices):
        trs = []
        for i in indices:
            r, rec = rows[i], records.get(rows[i]["index"], {})
            tag = ""
            if labels is not None:
                tag = (
                    '<span class="tag h">harmful</span>'
                    if labels[i]
                    else '<span class="tag">benign</span>'
                )
            trs.append(
                f"<tr><td>{r['rank']}</td><td>{r['weight']:.3f}</td><td>{tag}</td>"
                f"<td><b>{_cut(rec.get('prompt', ''))}</b><br>{_cut(rec.get('response', ''))}"
                f"</td></tr>"
            )
        return (
            '<table class="samples"><thead><tr><th>rank</th><th>weight</th><th>label</th>'
            f"<th>prompt / response (first {TRUNCATE} characters)</th></tr></thead>"
            f"<tbody>{''.join(trs)}</tbody></table>"
        )

    body = (
        '<p class="warning">Content warning: the lowest-ranked samples are where harmful '
        "requests and answers collect. They are folded away; open them deliberately.</p>"
        f"<details><summary>The {N_SAMPLES} highest-ranked samples (kept first)</summary>"
        f"{table(by_rank[:N_SAMPLES])}</details>"
        f"<details><summary>The {N_SAMPLES} lowest-ranked samples (dropped first)</summary>"
        f"{table(by_rank[-N_SAMPLES:][::-1])}</details>"
    )
    return Section("Samples at both ends of the ranking", body)


# --------------------------------------------------------------------------- assembly

CSS = """
body{font:14px/1.5 system-ui,-apple-system,Segoe UI,sans-serif;max-width:1060px;margin:2em auto;
padding:0 1.2em;color:#222}
h1{font-size:1.6em;margin-bottom:.1em}
h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
.meta{color:#666;margin-top:0} .note{color:#555;font-size:.92em;max-width:52em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{padding:.25em .6em;border-bottom:1px solid #eee;text-align:right;vertical-align:top}
thead th{border-bottom:2px solid #bbb;font-weight:600} tbody th{text-align:left}
table.results td{font-variant-numeric:tabular-nums;white-space:nowrap}
tr.ref{background:#f6f6f6}
table.samples td:last-child,table.samples th:last-child{text-align:left;max-width:46em}
img{max-width:100%} summary{cursor:pointer;margin:.5em 0;font-weight:600}
.warning{background:#fff4e5;border-left:4px solid #f0a030;padding:.5em .8em}
.tag{font-size:.8em;padding:0 .4em;border-radius:3px;background:#e8eef8}
.tag.h{background:#fde2e2}
"""


def build_report(run_dir: str | Path) -> Report:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run folder")
    results_path = run_dir / "results.json"
    results = read_json(results_path) if results_path.exists() else None
    select_dir = _find_select_dir(run_dir)
    if results is None and select_dir is None:
        raise FileNotFoundError(
            f"{run_dir}: neither a `seal run` folder (results.json) nor a `seal select` "
            f"folder (scores.parquet)"
        )
    report = Report(f"sealft report: {run_dir.name}")
    if results is not None:
        report.sections.append(results_section(results))
    label = (results or {}).get("config", {}).get("labels")
    if select_dir is not None:
        rows = read_scores(select_dir / "scores.parquet").to_pylist()
        records = _records(select_dir)
        labels = _labels(rows, records, label)
        report.sections.append(weights_section(report, rows, labels))
        if labels is not None:
            report.sections.append(scores_section(report, rows, labels))
    if results is not None and (sweep := sweep_section(report, results["summary"])):
        report.sections.append(sweep)
    if select_dir is not None:
        if curves := curves_section(report, select_dir, run_dir):
            report.sections.append(curves)
        if samples := samples_section(rows, records, labels):
            report.sections.append(samples)
    return report


def render_html(report: Report, meta: str) -> str:
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{html.escape(report.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1><p class=meta>{meta}</p>",
    ]
    for s in report.sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>{s.body}")
        if s.note:
            parts.append(f"<p class=note>{s.note}</p>")
    parts.append("</body></html>")
    return "".join(parts)


def write_report(run_dir: str | Path) -> Path:
    """Write run_dir/report.html and run_dir/report/*.png; returns the HTML's path."""
    run_dir = Path(run_dir)
    report = build_report(run_dir)
    figures = run_dir / "report"
    figures.mkdir(exist_ok=True)
    for name, png in report.figures.items():
        atomic_write(figures / name, png)
    meta = html.escape(
        f"{run_dir.resolve()} · {len(report.sections)} sections · figures in report/"
    )
    out = run_dir / "report.html"
    atomic_write(out, render_html(report, meta))
    return out
