"""Learning curves from metrics rows."""

from __future__ import annotations

from pathlib import Path

METRIC_ORDER = ["loss", "accuracy", "perplexity", "mse", "neg_elbo", "energy"]


def _metric_keys(rows):
    keys = []
    for r in rows:
        for k, v in r.items():
            if k in ("epoch", "iteration", "split", "seconds", "method", "seed", "step"):
                continue
            if not isinstance(v, (int, float)):
                continue
            if k not in keys:
                keys.append(k)
    return sorted(
        keys, key=lambda k: (METRIC_ORDER.index(k.split(".")[0]) if k.split(".")[0] in METRIC_ORDER else 99, k)
    )


#: train and test differ in line, marker and fill, so one epoch (a single point) reads too
STYLES = {
    "train": {"linestyle": "--", "marker": "s", "markerfacecolor": "none"},
    "test": {"linestyle": "-", "marker": "o"},
}


def x_key(rows) -> str:
    """The x axis of metrics rows: ``iteration`` for a stream's, else ``epoch``."""
    return "iteration" if any("iteration" in r for r in rows) else "epoch"


def draw_curves(series: dict[str, list[dict]], title: str = ""):
    """The figure of ``plot_curves`` (None when the rows hold no metric)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    all_rows = [r for rows in series.values() for r in rows]
    keys = _metric_keys(all_rows)
    if not keys:
        return None
    x = x_key(all_rows)
    epochs = sorted({r[x] for r in all_rows if isinstance(r.get(x), int)})
    size = 6 if len(epochs) <= 5 else 3  # few points: markers big enough to see
    cols = min(3, len(keys))
    nrows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key in zip(axes.flat, keys):
        for i, (label, rows) in enumerate(series.items()):
            for split, style in STYLES.items():
                pts = [
                    (r[x], r[key])
                    for r in rows
                    if r.get("split") == split and isinstance(r.get(key), (int, float))
                ]
                if pts:
                    xs, ys = zip(*pts)
                    ax.plot(
                        xs, ys, color=colors[i % len(colors)], ms=size,
                        label=f"{label} {split}" if len(series) > 1 else split, **style
                    )
        ax.set_title(key)
        ax.set_xlabel(x)
        if 0 < len(epochs) <= 10 and x == "epoch":  # whole epochs only, with room around a single one
            ax.set_xticks(epochs)
            ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if key in ("perplexity",):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    seen: dict = {}  # every series and split once, whichever panel has it
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    handles, labels = list(seen.values()), list(seen)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 if handles else 0, 1, 1))
    return fig


def plot_curves(series: dict[str, list[dict]], path: Path, title: str = "") -> None:
    """``series``: label -> metrics rows (epoch, split, metrics). One panel per metric,
    train dashed with open squares, test solid with dots."""
    import matplotlib.pyplot as plt

    fig = draw_curves(series, title)
    if fig is None:
        return
    fig.savefig(path, dpi=110)
    plt.close(fig)
