"""Recipe reports: one plain dict rendered as ``report.json`` and ``report.md``.

A report is ``{"title": str, "summary": [str], "tables": [{"title", "columns", "rows"}], "figures": [{"title",
"path"}], "results": {...}}``; every recipe fills the same shape so tests and tools read any of them alike. An
optional ``"lead"`` (one plain sentence: the run's answer) stands under the title, before the summary.

Example:

    report = {"title": "compress", "summary": ["KD beat NoKD by 0.4 points"],
              "tables": [{"title": "Accuracy", "columns": ["arm", "acc"], "rows": [["KD", "0.981"]]}]}
    write(report, "runs/x", recipe="compress", config={}, seconds=12.0)
"""

from __future__ import annotations

import platform
from pathlib import Path

from tfkd import io


def mean_std(values, *, scale=1.0, digits=4) -> str:
    """``0.9812 ± 0.0021``: the mean ± the sample std over seeds (the single value when there is one).

    Each value is multiplied by ``scale`` first (``scale=100``: accuracy in points) and printed with ``digits``
    decimals: ``mean_std([0.9123, 0.9185], scale=100, digits=2)`` is ``"91.54 ± 0.44"``.
    """
    import numpy as np

    values = np.asarray(values, dtype=float) * scale
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def to_markdown(report) -> str:
    lines = [f"# {report['title']}", ""]
    if report.get("lead"):
        lines += [report["lead"], ""]
    for line in report.get("summary", []):
        lines.append(f"- {line}")
    for table in report.get("tables", []):
        lines += ["", f"## {table['title']}", "", "| " + " | ".join(table["columns"]) + " |",
                  "|" + "---|" * len(table["columns"])]
        for row in table["rows"]:
            lines.append("| " + " | ".join(str(c) for c in row) + " |")
    figures = report.get("figures", [])
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{f['title']}]({f['path']})" for f in figures]
    return "\n".join(lines) + "\n"


def to_brief(report) -> str:
    """The report for a log: title, summary and first table in Markdown, then what else ``report.md`` holds."""
    tables, figures = report.get("tables", []), report.get("figures", [])
    text = to_markdown({"title": report["title"], "lead": report.get("lead"), "summary": report.get("summary", []),
                        "tables": tables[:1]})
    more = [f"'{t['title']}'" for t in tables[1:]] + ([f"{len(figures)} figure{'s' if len(figures) > 1 else ''}"]
                                                       if figures else [])
    return text + (f"\nAlso in report.md: {', '.join(more)}.\n" if more else "")


def write(report, run_dir, *, recipe, config, seconds) -> dict:
    import keras
    import tensorflow as tf

    run_dir = Path(run_dir)
    full = {**report, "recipe": recipe, "config": config, "seconds": round(seconds, 1),
            "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                        "python": platform.python_version(), "tensorflow": tf.__version__,
                        "keras": keras.__version__}}
    json_path = io.write_json(run_dir / "report.json", full)
    md = to_markdown(report) + f"\n_{recipe}, {seconds / 60:.1f} min on {full['machine']['processor']}, " \
                               f"TensorFlow {tf.__version__}, Keras {keras.__version__}._\n"
    md_path = io.write_text(run_dir / "report.md", md)
    return {"json": json_path, "markdown": md_path}
