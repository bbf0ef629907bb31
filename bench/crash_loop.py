"""The fast suite in a loop, to find native crashes and tests that fail on a busy machine.

Runs ``pytest`` (the fast suite, or ``--args``) ``--runs`` times; with ``--beside`` a second copy
runs at the same time in another process, so each run sees a loaded 2-core machine. Every run
writes the conftest's crash artifacts under its own directory (``ML_ASSETS_TEST_ARTIFACTS``):
a run that dies names the test it was in (``running-test``) and every thread's stack
(``crash-traceback.txt``). Prints one line per run and a summary: runs, passed, failed tests,
crashes (signal, test, the crashing thread's top frames).

    uv run python bench/crash_loop.py --runs 10 --beside
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_suite(artifacts: Path, args: list[str]) -> subprocess.Popen:
    artifacts.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"ML_ASSETS_TEST_ARTIFACTS": str(artifacts)}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", *args],
        cwd=ROOT,
        env=env,
        stdout=(artifacts / "pytest.log").open("w"),
        stderr=subprocess.STDOUT,
    )


def outcome(code: int, artifacts: Path) -> tuple[str, list[str]]:
    """("passed" | "failed" | "crashed: SIG... in <test>", failing test ids or crash frames)."""
    log = (artifacts / "pytest.log").read_text(errors="replace")
    if code < 0 or code >= 128 or (artifacts / "running-test").exists():
        number = -code if code < 0 else code - 128
        name = signal.Signals(number).name if 0 < number < 65 else f"exit {code}"
        test = (
            (artifacts / "running-test").read_text().strip()
            if (artifacts / "running-test").exists()
            else "?"
        )
        trace = (artifacts / "crash-traceback.txt").read_text(errors="replace")
        current = trace.split("Current thread", 1)[-1].splitlines()[1:6] if trace else []
        return f"crashed: {name} in {test}", current
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", log, re.M)
    return ("passed" if code == 0 else "failed"), failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--beside", action="store_true", help="a second suite at the same time")
    parser.add_argument("--out", default="/tmp/ml-assets-crash-loop")
    parser.add_argument("--args", nargs=argparse.REMAINDER, default=[])
    args = parser.parse_args()
    out = Path(args.out)
    summary: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for i in range(1, args.runs + 1):
        started = time.perf_counter()
        main_dir = out / f"run-{i:02d}"
        beside = run_suite(out / f"run-{i:02d}-beside", args.args) if args.beside else None
        code = run_suite(main_dir, args.args).wait()
        if beside is not None:
            beside_result = outcome(beside.wait(), out / f"run-{i:02d}-beside")
        else:
            beside_result = None
        result, details = outcome(code, main_dir)
        summary[result.split(":")[0]] += 1
        failures.update(details if result == "failed" else [])
        extra = f"; beside: {beside_result[0]}" if beside_result else ""
        print(f"run {i:2d}: {result} ({time.perf_counter() - started:.0f} s){extra}", flush=True)
        for line in details:
            print(f"    {line}", flush=True)
        if beside_result and beside_result[0] != "passed":
            summary["beside " + beside_result[0].split(":")[0]] += 1
            failures.update(beside_result[1] if beside_result[0] == "failed" else [])
            for line in beside_result[1]:
                print(f"    beside: {line}", flush=True)
    print(f"\n{args.runs} runs: {dict(summary)}")
    if failures:
        print("failing tests:", dict(failures))


if __name__ == "__main__":
    main()
