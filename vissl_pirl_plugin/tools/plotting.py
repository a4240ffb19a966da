"""The tools' figures: one matplotlib axes of the same size, saved as a PNG (Agg backend)."""
from pathlib import Path
from typing import Any, Tuple


def new_axes() -> Tuple[Any, Any]:
    """A ``(figure, axes)`` pair, drawn off-screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.4, 4.0), dpi=120)


def save_png(figure: Any, axes: Any, title: str, out: Path) -> Path:
    """Titles the axes, adds the legend, writes ``out`` (creating its folder) and closes."""
    import matplotlib.pyplot as plt

    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return out
