"""Plots planning time against series size for both tools, from run.py's results.json.

Usage: plot.py RESULTS_JSON OUTPUT_PNG
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    results = json.load(open(sys.argv[1]))
    rows = results["rows"]
    runs = [row["runs"] for row in rows]
    figure, axis = plt.subplots(figsize=(7, 4.5), dpi=120)
    for tool, label, marker in [
        ("original", "original (container-collection 1.1.0, Python)", "o"),
        ("simseries", "simseries plan --write-inputs", "s"),
    ]:
        axis.plot(runs, [row[tool]["wall_s"] for row in rows], marker=marker, label=label)
    for row in rows:
        axis.annotate(
            f"{row['original']['wall_s'] / row['simseries']['wall_s']:.0f}x",
            (row["runs"], row["simseries"]["wall_s"]),
            textcoords="offset points",
            xytext=(6, 6),
            ha="left",
        )
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("runs in the series (conditions x seeds)")
    axis.set_ylabel("wall time, planning + writing the inputs (s)")
    axis.set_title(f"Planning a series, same files, one machine ({results['date']})")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(sys.argv[2])


if __name__ == "__main__":
    main()
