"""Random barcodes and their mutants for the barcode-evidence tests (SYNTHETIC, not biology)."""
import random


def random_barcode(n: int, seed: int) -> str:
    """A random ACGT string."""
    r = random.Random(seed)
    return "".join(r.choice("ACGT") for _ in range(n))


def mutate(seq: str, rate: float, seed: int) -> str:
    """`seq` with each base substituted with probability `rate`."""
    r = random.Random(seed)
    return "".join(r.choice("ACGT".replace(b, "")) if r.random() < rate else b for b in seq)
