"""Pictures of run history for notebooks: a timeline of runs per job, coloured by status.

matplotlib is imported only when a plot is asked for; without it the error says what to install.
"""

from __future__ import annotations

from .commands import STATUS_COLOURS

__all__ = ["STATUS_COLOURS", "png", "show_timeline", "timeline"]


def _pyplot_free_figure():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        from ..errors import NbschedError

        raise NbschedError("The timeline needs matplotlib: pip install matplotlib") from None
    return Figure


def timeline(history):
    """A matplotlib Figure: one row per job (or service, for runs outside a job), one dot per run.

    ``history`` is a DataFrame as ``client.history()`` returns it. The x axis is the time the run
    started (its scheduled time when it never started), in the time zone of the frame.
    """
    figure_class = _pyplot_free_figure()
    rows = history.assign(
        label=history["job"].fillna("invoke: " + history["service"].astype(str)),
        when=history["started_at"].fillna(history["scheduled_at"]),
    )
    labels = sorted(rows["label"].unique())
    figure = figure_class(figsize=(9, 1.2 + 0.45 * max(len(labels), 1)))
    axes = figure.add_subplot()
    for status, group in rows.groupby("status"):
        y = [labels.index(label) for label in group["label"]]
        axes.scatter(group["when"], y, color=STATUS_COLOURS.get(status, "black"), label=status, s=28, zorder=2)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_ylim(-0.7, len(labels) - 0.3)
    axes.grid(axis="x", alpha=0.3)
    zone = getattr(rows["when"].dt, "tz", None)
    axes.set_xlabel(f"time ({zone})" if zone else "time")
    axes.set_title(f"{len(rows)} runs" if len(rows) else "no runs yet")
    if len(rows):
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def png(figure) -> bytes:
    """The figure as PNG bytes."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return buffer.getvalue()


def show_timeline(history) -> None:
    """Display the timeline of ``history`` in the notebook (as a PNG, so no pyplot state is touched)."""
    from IPython.display import Image, display

    display(Image(data=png(timeline(history)), format="png"))
