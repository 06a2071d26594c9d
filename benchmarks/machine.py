"""A description of the machine a benchmark ran on, recorded next to its results."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch


def describe_machine() -> dict[str, object]:
    """CPU count, platform, torch version and GPU model (if any)."""
    info: dict[str, object] = {
        "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


RESULTS = Path(__file__).parent / "results"


def write_results(name: str, out: dict, md: list[str]) -> None:
    """Write `results/<name>.json` (the numbers) and `results/<name>.md` (the table), and print the table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2, default=float) + "\n")
    text = "\n".join(md).rstrip("\n") + "\n"
    (RESULTS / f"{name}.md").write_text(text)
    print(text, end="")
