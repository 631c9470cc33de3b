"""What a benchmark ran on, for its recorded results (the scripts here import it as a sibling)."""

import os
import platform


def cpu_model() -> str:
    with open("/proc/cpuinfo") as info:
        return next(
            (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
            platform.processor() or "unknown CPU",
        )


def describe() -> str:
    """CPU model, core count, OS and Python version in one line."""
    return f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"
