"""The calibrated thresholds of a reference set, stored as `calibration.json` beside its snapshots."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from clibd.index.identity import IdentityBands
from clibd.index.verdict import ModalityThresholds

CALIBRATION_FILE = "calibration.json"


class CalibrationMismatchError(ValueError):
    """The stored thresholds were fitted for another checkpoint."""


@dataclass
class Thresholds:
    """Calibrated thresholds per embedding query modality and the barcode identity bands, with what they were
    fitted on."""

    by_modality: dict[str, ModalityThresholds]
    checkpoint_hash: str
    target_precision: float
    fitted_on: dict = field(default_factory=dict)
    barcode: Optional[IdentityBands] = None

    def save(self, root: str | Path) -> Path:
        """Write the thresholds beside the index snapshots (they outlive compactions of the same model)."""
        path = Path(root) / CALIBRATION_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, root: str | Path, checkpoint_hash: Optional[str] = None) -> Optional["Thresholds"]:
        """The stored thresholds, None when none were fitted; refuse another checkpoint's."""
        path = Path(root) / CALIBRATION_FILE
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        if checkpoint_hash is not None and raw["checkpoint_hash"] != checkpoint_hash:
            raise CalibrationMismatchError(f"{path} was fitted for checkpoint {raw['checkpoint_hash'][:12]}, "
                                           f"not {checkpoint_hash[:12]}; run `clibd calibrate` again")
        raw["by_modality"] = {m: ModalityThresholds(t["confident"], t["novel"])
                              for m, t in raw["by_modality"].items()}
        raw["barcode"] = IdentityBands(**raw["barcode"]) if raw.get("barcode") else None
        return cls(**raw)
