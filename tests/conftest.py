"""Shared fixtures: a tiny synthetic record set and the optional real data beside the project."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clibd.training.partition import PartitionConfig, partition, write_partition
from clibd.readers import read_records
from clibd.training.synth import SynthConfig, generate

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip: a user's clone has no real data beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (only present beside the project's own checkout)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SYNTHETIC set (2 orders, 16 species), partitioned: <dir>/partition/records.tsv."""
    root = tmp_path_factory.mktemp("synth")
    cfg = SynthConfig(orders=2, families_per_order=2, genera_per_family=2, species_per_genus=2,
                      specimens_per_species=(10, 14), image_size=48, seed=1)
    generate(root / "synth", cfg, progress=False)
    pcfg = PartitionConfig(seed=1)
    write_partition(partition(read_records(root / "synth" / "records.tsv"), pcfg), root / "partition", pcfg)
    return root
