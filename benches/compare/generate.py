"""Writes a synthetic ARCADE-style series for the side-by-side comparison.

Usage: generate.py FOLDER CONDITIONS SEEDS

FOLDER gets `series.yaml` (JSON, which is YAML too, so both tools read the same file),
`manifest.csv` and `template.xml`. Two named groups share the conditions; about a third of the
runs are missing (no manifest row) or incomplete (one extension without a row), scattered so
that the seed ranges split; the manifest also holds rows of another series, which both tools
must ignore. Everything is derived from the condition and seed numbers: the same arguments
give the same files.
"""

import json
import sys
from pathlib import Path

NAME = "SWEEP"
EXTENSIONS = ["CELLS.tar.xz", "LOCATIONS.tar.xz"]
SEEDS_PER_JOB = 10

TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<set path="/mnt/outputs/" prefix="{{ conditions[0].key }}">
{%- for condition in conditions %}
    <series name="{{ condition.key }}" start="{{ condition.start_seed }}" end="{{ condition.end_seed }}" days="{{ condition.days }}" snapshots="{{ condition.days // 2 }}">
        <potts>
            <potts.term id="adhesion" value="{{ condition.adhesion }}" />
            <potts.term id="volume" lambda="{{ condition.volume_lambda }}" target="{{ condition.volume * 1.5 }}" />
            <potts.term id="persistence" decay="{{ condition.decay }}" enabled="{{ condition.persistent }}" />
        </potts>
        <populations>
            <population id="X" init="{{ condition.cells }}" fraction="{{ condition.fraction }}" />
            {%- if condition.persistent %}
            <population id="Y" init="{{ (condition.cells / 4) | int }}" fraction="{{ 1 - condition.fraction }}" />
            {%- endif %}
        </populations>
    </series>
{%- endfor %}
</set>
"""


def status(condition, seed):
    """0: complete, 1: missing, 2: incomplete (about 2/3, 1/6, 1/6)."""
    h = (condition * 7919 + seed * 104729) % 6
    return 0 if h < 4 else (1 if h == 4 else 2)


def main():
    folder, conditions, seeds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    folder.mkdir(parents=True, exist_ok=True)
    series = {
        "apiVersion": "simseries.io/v1alpha1",
        "kind": "SimulationSeries",
        "metadata": {"name": "sweep"},
        "spec": {
            "context": {
                "workingLocation": "working",
                "manifestLocation": ".",
                "templateLocation": ".",
                "vcpus": 1,
                "memory": 1024,
            },
            "series": {
                "name": NAME,
                "manifestKey": "manifest.csv",
                "templateKey": "template.xml",
                "manifestSource": "file",
                "seeds": list(range(seeds)),
                "conditions": [
                    {
                        "key": f"C{i:04}",
                        "group": "A" if i % 2 == 0 else "B",
                        "days": 7 + i % 5,
                        "adhesion": round(1.0 / (i + 3), 6),
                        "volume": 2000 + i,
                        "volume_lambda": [1.0, 0.5, 2.5e-07, 1e-05][i % 4],
                        "decay": 1e-05 * (i % 7),
                        "persistent": i % 3 == 0,
                        "cells": 100 + i % 50,
                        "fraction": 0.25 + (i % 4) * 0.125,
                    }
                    for i in range(conditions)
                ],
                "extensions": EXTENSIONS,
                "groups": {"A": "even conditions", "B": "odd conditions"},
            },
            "parameters": {
                "model": "ARCADE",
                "retries": 1,
                "retryDelay": 60,
                "seedsPerJob": SEEDS_PER_JOB,
            },
        },
    }
    (folder / "series.yaml").write_text(json.dumps(series, indent=1) + "\n")
    (folder / "template.xml").write_text(TEMPLATE)
    with (folder / "manifest.csv").open("w") as out:
        out.write("KEY,EXTENSION,LOCATION,FULL_KEY\n")
        for c in range(conditions):
            for seed in range(seeds):
                kind = status(c, seed)
                if kind == 1:
                    continue
                key = f"{NAME}_C{c:04}_{seed:04}"
                for extension in EXTENSIONS[: 1 if kind == 2 else 2]:
                    out.write(f"{key},{extension},s3://bucket/outputs,{key}.{extension}\n")
        # Another series in the same manifest: ignored by both.
        for seed in range(min(seeds, 100)):
            key = f"OTHER_C0000_{seed:04}"
            out.write(f"{key},CELLS.tar.xz,s3://bucket/outputs,{key}.CELLS.tar.xz\n")


if __name__ == "__main__":
    main()
