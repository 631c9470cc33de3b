"""What a benchmark ran on, and the page it writes (the scripts here import it as a sibling)."""

import os
import platform
import subprocess
import time
from pathlib import Path


def cpu_model() -> str:
    with open("/proc/cpuinfo") as info:
        return next(
            (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
            platform.processor() or "unknown CPU",
        )


def describe() -> str:
    """CPU model, core count, OS and Python version in one line."""
    return f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def commit() -> str | None:
    """The repository's short commit, "+changes" when tracked files differ from it; None outside git."""
    try:
        run = lambda *a: subprocess.run(
            ["git", *a], cwd=Path(__file__).parent, capture_output=True, text=True, check=True
        ).stdout.strip()
        return run("rev-parse", "--short", "HEAD") + (
            "+changes" if run("status", "--porcelain", "--untracked-files=no") else ""
        )
    except (OSError, subprocess.CalledProcessError):
        return None


def busy_fraction(seconds: float = 2.0) -> float | None:
    """Share of the CPUs' time that was not idle over the next `seconds` (Linux's /proc/stat);
    None where it cannot be read."""

    def idle_and_total():
        with open("/proc/stat") as stat:
            ticks = [int(x) for x in stat.readline().split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait

    try:
        idle0, total0 = idle_and_total()
        time.sleep(seconds)
        idle1, total1 = idle_and_total()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def provenance(script: str, argv=None) -> dict:
    """command, date, commit and machine of a run of benchmarks/`script` with `argv` (None: sys.argv[1:])."""
    import sys
    from datetime import date

    return {
        "command": " ".join([f"python benchmarks/{script}", *(argv if argv is not None else sys.argv[1:])]),
        "date": date.today().isoformat(),
        "commit": commit(),
        "machine": describe(),
    }


def provenance_line(report: dict) -> str:
    """The "Command: ..." line of a page, from a report that holds `provenance`'s fields."""
    return f"Command: `{report['command']}` on {report['date']}, commit {report['commit']}; {report['machine']}."


def save(folder: Path, stem: str, report: dict, page: str) -> None:
    """`report` as folder/stem.json and `page` as folder/stem.md; the page is printed too."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    (folder / f"{stem}.md").write_text(page)
    print(page)


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)
