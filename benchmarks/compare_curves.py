"""kNN learning curves of several ``pyro-vje compare`` reports (one per seed) in one figure.

Each method keeps one colour across the reports; each report (seed) gets its own line style.
The references of the first report (raw-pixel kNN, the random-init encoder) are drawn as
horizontal lines, and the supervised ceiling when the reports hold a ``supervised`` entry.
Prints, per method and report, the kNN change over the last 20 % of training (the
flattening criterion of docs/methods.md, "Fashion-MNIST").

    python benchmarks/compare_curves.py runs/cmp-s0/compare.json runs/cmp-s1/compare.json \\
        --out docs/figures/fashion_mnist_knn.png --title "Fashion-MNIST, 800 steps"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def last_fifth_change(curve: list[dict], total_epochs: int) -> float | None:
    """kNN of z at the end minus kNN at the last evaluation at or before 80 % of training."""
    points = [(p["epoch"], p["knn_z"]) for p in curve if p.get("knn_z") is not None]
    if len(points) < 2:
        return None
    before = [acc for epoch, acc in points if epoch <= 0.8 * total_epochs]
    return points[-1][1] - before[-1] if before else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("reports", nargs="+", help="compare.json files, one per seed")
    parser.add_argument("--out", required=True, help="the figure (.png)")
    parser.add_argument("--title", default="kNN of z against epoch")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reports = [json.loads(Path(p).read_text()) for p in args.reports]
    names = list(dict.fromkeys(name for r in reports for name in r["entries"]))
    colours = {name: plt.get_cmap("tab20")(i % 20) for i, name in enumerate(names)}
    styles = ["-", "--", "-.", ":"]
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, report in enumerate(reports):
        seed = report["base"].get("seed", i)
        for name, entry in report["entries"].items():
            points = [(p["epoch"], p["knn_z"]) for p in entry["curve"] if p.get("knn_z") is not None]
            if not points:
                continue
            label = name if i == 0 or name not in reports[0]["entries"] else None
            ax.plot(*zip(*points), styles[i % 4], marker="o", markersize=3, color=colours[name], label=label)
            change = last_fifth_change(entry["curve"], entry["config"]["epochs"])
            shown = "n/a" if change is None else f"{100 * change:+.2f} points"
            print(f"seed {seed}  {name:<16} final kNN z {points[-1][1]:.4f}  last 20 %: {shown}")
    for key, label, style in (
        ("knn_raw_pixels", "raw pixels", "--"),
        ("knn_z_random_init", "random-init", ":"),
    ):
        value = reports[0]["baselines"].get(key)
        if value is not None:
            ax.axhline(value, color="black", linestyle=style, linewidth=1, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("kNN top-1 accuracy of z (k = 30)")
    ax.set_title(args.title + "  (line style: seed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    plt.close(fig)
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
