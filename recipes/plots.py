"""PNG plots for recipe reports (matplotlib, headless): training curves and arm comparisons."""

from __future__ import annotations

from pathlib import Path

from tfkd import io


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# Arms that share a seed start alike (KD and KD + alpha decay are the same run until the decay starts): each arm
# gets its own colour, line style and marker, markers offset per arm, so lines on top of each other stay apart.
_STYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def curves(histories: dict, metric, path, title: str, ylabel: str | None = None) -> str:
    """One line per arm of ``history[metric]`` over epochs; arms without the metric are left out.

    ``metric`` is a key, or a list of keys of which each arm's first present one is drawn (e.g.
    ``["val_hard_loss", "val_loss"]``: a Distiller's label cross-entropy, a plain model's loss).
    """
    plt = _pyplot()
    keys = [metric] if isinstance(metric, str) else list(metric)
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = 0
    for i, (label, history) in enumerate(histories.items()):
        key = next((k for k in keys if history.get(k)), None)
        if key is None:
            continue
        values = history[key]
        every = max(1, len(values) // 8)
        # Open markers of different shapes and sizes stay visible when two arms sit on the same point.
        ax.plot(range(1, len(values) + 1), values, label=label, color=colors[i % len(colors)],
                linestyle=_STYLES[i % len(_STYLES)], marker=_MARKERS[i % len(_MARKERS)],
                markersize=max(3.5, 8 - 0.8 * (i % 6)), markerfacecolor="none", markevery=(i % every, every),
                linewidth=1.4, alpha=0.9)
        drawn += 1
    ax.xaxis.set_major_locator(_ticker().MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel or keys[0])
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _save(fig, path)


def comparison(labels, means, stds, counts, path, title: str, xlabel: str, reference: str | None = None) -> str:
    """The arms ranked by ``means`` (best on top), each a dot with its value written beside it.

    ``stds`` draw +-1 standard deviation bars where ``counts`` (runs per arm) is over 1; an arm of one run has no
    bar and says so. The value axis is zoomed to where the arms lie (dots, not bars: a dot's position carries the
    value, so the axis need not start at 0) and its label says it is zoomed. ``reference`` (a label) draws a
    dashed line through that arm's mean, e.g. labels-only training.
    """
    plt = _pyplot()
    order = sorted(range(len(labels)), key=lambda i: means[i])  # bottom to top: the best ends up on top
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(labels) + 1.4))
    for row, i in enumerate(order):
        spread = stds[i] if counts[i] > 1 else 0.0
        ax.errorbar(means[i], row, xerr=spread if spread else None, fmt="o", color="#4c72b0", ecolor="#4c72b0",
                    capsize=3, markersize=6)
        text = f"{means[i]:.4f} ± {stds[i]:.4f} ({counts[i]} runs)" if counts[i] > 1 else f"{means[i]:.4f} (1 run)"
        ax.annotate(text, (means[i] + spread, row), xytext=(6, 0), textcoords="offset points", va="center",
                    fontsize=8, annotation_clip=False, bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
    if reference in labels:
        ax.axvline(means[labels.index(reference)], color="#c44e52", linestyle="--", linewidth=1,
                   label=f"{reference}")
        ax.legend(fontsize=8, loc="best")
    ax.set_yticks(range(len(order)), [labels[i] for i in order], fontsize=8)
    low = min(m - (s if n > 1 else 0) for m, s, n in zip(means, stds, counts))
    high = max(m + (s if n > 1 else 0) for m, s, n in zip(means, stds, counts))
    span = max(high - low, 0.01)
    lo, hi = max(0.0, low - 0.15 * span), high + 0.45 * span  # room on the right for the value labels
    if high <= 1.0:  # a share (accuracy): the axis stops at 1, the labels may run into the margin
        hi = min(hi, 1.0)
    ax.set_xlim(lo, hi)
    zoom = f" (axis zoomed: starts at {lo:.3f}, not 0)" if lo > 0 else ""
    ax.set_xlabel(xlabel + zoom)
    one = all(n <= 1 for n in counts)
    ax.set_title(title + (" (one run each: no error bars)" if one else " (bars: ±1 std over runs)"), fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def _ticker():
    import matplotlib.ticker

    return matplotlib.ticker


def _save(fig, path) -> str:
    plt = _pyplot()
    path = Path(path)
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight")  # legends may sit outside the axes
    plt.close(fig)
    return str(path)


def frontier(points, front, path, title: str, size_key="params", score_key="val_accuracy") -> str:
    """Scatter of every candidate's accuracy against its size, with the Pareto frontier drawn and marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([p[size_key] for p in points], [p[score_key] for p in points], color="#999999", label="trials")
    ax.plot([p[size_key] for p in front], [p[score_key] for p in front], "o-", color="#c44e52", label="frontier")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters")
    ax.set_ylabel("validation accuracy (distilled)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
