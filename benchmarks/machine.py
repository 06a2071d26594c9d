"""A description of the machine a benchmark ran on, recorded next to its results."""
from __future__ import annotations

import os
import platform

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
