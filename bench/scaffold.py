"""Wall time of ``vibetuner scaffold new --defaults`` against ``copier copy`` of the same
template with the same answers, measured in the same run (medians, runs interleaved).

Target: ratio <= 1.5. Exits 1 when it is missed.
Usage: python bench/scaffold.py [--repeat N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from _common import report, run_quiet
from startup import installed_script

ANSWERS = {"project_name": "benchapp", "package_name": "benchapp"}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    from vibetuner.cli.template import installed_template

    vibetuner = installed_script("vibetuner")
    copier = installed_script("copier")
    template = installed_template()
    data = [arg for key, value in ANSWERS.items() for arg in ("--data", f"{key}={value}")]
    work = Path(tempfile.mkdtemp(prefix="vibetuner-bench-"))
    try:
        import time

        ours, base = [], []
        # One untimed run first: the first scaffold of a template version also records it
        # in the local template history used by `scaffold update`.
        run_quiet([vibetuner, "scaffold", "new", str(work / "warm"), "--defaults", *data])
        for index in range(args.repeat):
            start = time.perf_counter()
            run_quiet(
                [vibetuner, "scaffold", "new", str(work / f"ours{index}"), "--defaults", *data]
            )
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            run_quiet(
                [
                    copier,
                    "copy",
                    "--quiet",
                    "--defaults",
                    *data,
                    str(template),
                    str(work / f"base{index}"),
                ]
            )
            base.append(time.perf_counter() - start)
        produced = sorted(
            p.relative_to(work / "ours0").as_posix()
            for p in (work / "ours0").rglob("*")
            if p.is_file()
        )
        expected = sorted(
            p.relative_to(work / "base0").as_posix()
            for p in (work / "base0").rglob("*")
            if p.is_file()
        )
        if produced != expected:
            sys.exit(f"the two renders differ:\n{sorted(set(produced) ^ set(expected))}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ours.sort()
    base.sort()
    ok = report(
        [
            (
                "scaffold new --defaults / copier copy (s)",
                ours[len(ours) // 2],
                base[len(base) // 2],
                1.5,
                "<=",
            )
        ]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
