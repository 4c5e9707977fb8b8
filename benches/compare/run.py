"""Runs the original workflow's planning and `simseries plan --write-inputs` side by side on
the same synthetic series, checks that both wrote the same inputs, and prints a table.

Usage: run.py SIMSERIES_BINARY WORK_FOLDER SIZE [SIZE ...]

Beside the two tools it measures simseries' writes against the file system's limit: `simseries
plan` without writing (the same planning and rendering) gives the planning time, the rest of
`--write-inputs` is the writes, and WORK_FOLDER/minimal-writer (benches/compare/minimal_writer.rs)
writes the same files into a fresh folder from one thread with nothing else (create, write,
close), its median of 3 rounds.

SIZE is a number of runs: 10000 (100 conditions x 100 seeds), 100000 (1,000 x 100) or
1000000 (1,000 x 1,000). Each tool runs as a whole process, one after the other, on the same
files; wall time, CPU time (user + system) and peak RSS come from the kernel's accounting of
the child (wait4). Each tool runs 3 times into fresh folders and the run of median wall time is
reported (a run of the original longer than 30 s runs once). Results go to WORK_FOLDER/results.json and, as a Markdown table, stdout.
"""

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATE = "2024-06-01"
SHAPES = {10_000: (100, 100), 100_000: (1_000, 100), 1_000_000: (1_000, 1_000)}


def run(command, log):
    """Runs `command` as a child (stdout and stderr to `log`) and measures it with the kernel's
    resource use of that child alone."""
    # The previous run's files are flushed first, so neither tool pays for the other's writes.
    os.sync()
    time.sleep(1)
    start = time.perf_counter()
    with open(log, "wb") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(map(str, command))} failed:\n{Path(log).read_text()}")
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "sys_s": round(usage.ru_stime, 3),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }


def median_run(command, output, log, once_after=30.0):
    """Runs `command + [folder]` up to 3 times, each into a fresh folder; returns the run of
    median wall time and the first folder."""
    runs = []
    for attempt in range(3):
        folder = Path(f"{output}-{attempt}")
        runs.append(run(command(folder), log))
        if runs[0]["wall_s"] > once_after:
            break
    runs.sort(key=lambda r: r["wall_s"])
    return runs[len(runs) // 2], Path(f"{output}-0")


def minimal_writes(writer, written, dest):
    """The minimal writer's median seconds over 3 rounds, writing the inputs simseries wrote,
    each round into a fresh folder after the same flush and pause as `run`, so that no round
    pays for another's writes or deletes."""
    (source,) = written.glob(f"*/{DATE}/inputs")
    times = []
    for attempt in range(3):
        os.sync()
        time.sleep(1)
        out = subprocess.run(
            [writer, source, f"{dest}-{attempt}"], check=True, capture_output=True, text=True
        )
        times.append(float(out.stdout))
    for attempt in range(3):
        shutil.rmtree(f"{dest}-{attempt}")
    return sorted(times)[1]


def inputs_of(folder):
    """(file name, content) of every input written under FOLDER/{name}/{date}/inputs/."""
    return sorted(
        (path.name, path.read_bytes())
        for path in folder.glob(f"*/{DATE}/inputs/*.xml")
    )


def compare(original, simseries):
    """Both wrote the same inputs: the same names and bytes, or, past 10,000 inputs in a group
    (where the original makes one array job AWS refuses and simseries splits it into parts),
    the same contents."""
    if [n for n, _ in original] == [n for n, _ in simseries]:
        same = original == simseries
        how = "same names and bytes"
    else:
        same = sorted(c for _, c in original) == sorted(c for _, c in simseries)
        how = "same contents (groups past 10,000 inputs are split into parts by simseries)"
    if not same:
        sys.exit(f"the inputs differ ({len(original)} vs {len(simseries)} files)")
    if not original:
        sys.exit("neither wrote any input: nothing was compared")
    return how


def main():
    binary, work = sys.argv[1], Path(sys.argv[2])
    sizes = [int(s) for s in sys.argv[3:]] or list(SHAPES)
    python = sys.executable
    rows = []
    for size in sizes:
        conditions, seeds = SHAPES[size]
        folder = work / f"runs-{size}"
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run(
            [python, HERE / "generate.py", folder, str(conditions), str(seeds)], check=True
        )
        series = folder / "series.yaml"
        out_original, out_simseries = folder / "original", folder / "simseries"
        original, out_original = median_run(
            lambda out: [python, HERE / "original.py", series, out, DATE],
            out_original,
            folder / "original.log",
        )
        simseries, out_simseries = median_run(
            lambda out: [binary, "plan", "-f", series, "--date", DATE, "--write-inputs", out],
            out_simseries,
            folder / "simseries.log",
        )
        plan_only, _ = median_run(
            lambda out: [binary, "plan", "-f", series, "--date", DATE],
            folder / "plan-only",
            folder / "plan-only.log",
        )
        minimal = minimal_writes(work / "minimal-writer", out_simseries, folder / "minimal")
        written_original, written_simseries = inputs_of(out_original), inputs_of(out_simseries)
        how = compare(written_original, written_simseries)
        rows.append(
            {
                "runs": size,
                "conditions": conditions,
                "seeds": seeds,
                "inputs": len(written_simseries),
                "identical": how,
                "original": original,
                "simseries": simseries,
                "simseries_plan_only": plan_only,
                "minimal_writer_s": minimal,
            }
        )
        print(f"{size:,} runs: {len(written_simseries):,} inputs, {how}", file=sys.stderr)
        for written in folder.glob("*-[0-9]"):
            shutil.rmtree(written)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    (work / "results.json").write_text(
        json.dumps({"machine": machine, "date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=1)
    )
    print(f"Machine: {machine}; {time.strftime('%Y-%m-%d')}\n")
    print("| runs (conditions x seeds) | inputs | original: wall, CPU, peak RSS | "
          "simseries: wall, CPU, peak RSS | wall ratio | CPU ratio |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        o, s = row["original"], row["simseries"]
        print(
            f"| {row['runs']:,} ({row['conditions']:,} x {row['seeds']:,}) | {row['inputs']:,} | "
            f"{o['wall_s']:.2f} s, {o['cpu_s']:.2f} s, {o['peak_rss_mib']:.0f} MiB | "
            f"{s['wall_s']:.2f} s, {s['cpu_s']:.2f} s, {s['peak_rss_mib']:.0f} MiB | "
            f"{o['wall_s'] / s['wall_s']:.1f}x | {o['cpu_s'] / max(s['cpu_s'], 0.001):.1f}x |"
        )
    print("\nWriting the inputs: simseries' writes (`--write-inputs` less `plan` alone) beside the "
          "file system's limit (one thread creating, writing and closing each file):\n")
    print("| runs | inputs | simseries plan + write | plan alone | writes | minimal writer | "
          "writes / minimal |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        s, p, m = row["simseries"]["wall_s"], row["simseries_plan_only"]["wall_s"], row["minimal_writer_s"]
        writes = max(s - p, 0.0)
        print(
            f"| {row['runs']:,} | {row['inputs']:,} | {s:.2f} s | {p:.2f} s | {writes:.2f} s | "
            f"{m:.2f} s | {writes / max(m, 0.001):.2f}x |"
        )


if __name__ == "__main__":
    main()
