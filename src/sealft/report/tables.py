"""Tables of results: mean and sample standard deviation per (method, p), as Markdown and as
the cells the HTML report shows."""

from __future__ import annotations

import statistics


def summarise(runs: list[dict]) -> list[dict]:
    """Mean and sample standard deviation of every metric, per (method, p)."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["method"], run["p"]), []).append(run)
    rows = []
    for (method, p), members in groups.items():
        names = list(dict.fromkeys(k for m in members for k in m["metrics"]))
        stats = {}
        for name in ["trained", *names]:
            values = [
                float(m[name] if name == "trained" else m["metrics"][name])
                for m in members
                if name == "trained" or name in m["metrics"]
            ]
            stats[name] = {
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "n": len(values),
            }
        rows.append({"method": method, "p": p, "seeds": len(members), "metrics": stats})
    return rows


def format_cell(stat: dict, name: str) -> str:
    """A table cell: mean, and ± std when there are several seeds; rates in percent."""
    rate = name.endswith(("_rate", "_accuracy"))
    scale, digits = (100.0, 1) if rate else (1.0, 3)
    if name == "trained":
        scale, digits = 1.0, 0
    mean = f"{stat['mean'] * scale:.{digits}f}"
    return mean if stat["n"] < 2 else f"{mean} ± {stat['std'] * scale:.{digits}f}"


def markdown_table(summary: list[dict]) -> str:
    names = list(dict.fromkeys(k for row in summary for k in row["metrics"]))
    header = ["method", "p", "seeds", *[heading(n) for n in names]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary:
        cells = [
            row["method"],
            "" if row["p"] is None else f"{row['p']:g}",
            str(row["seeds"]),
            *[format_cell(row["metrics"][n], n) if n in row["metrics"] else "" for n in names],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def heading(name: str) -> str:
    text = name.replace("_", " ")
    return f"{text} (%)" if name.endswith(("_rate", "_accuracy")) else text
