"""The alignment baseline users know: `vsearch --usearch_global` top hits."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from clibd.dna_tokenizer import normalize_sequence


def vsearch_available() -> bool:
    """Whether the `vsearch` binary is on PATH."""
    return shutil.which("vsearch") is not None


def _write_fasta(path: Path, prefix: str, sequences: Sequence[str]) -> None:
    with open(path, "w") as fh:
        for i, seq in enumerate(sequences):
            fh.write(f">{prefix}{i}\n{normalize_sequence(seq)}\n")


def vsearch_top_hits(queries: Sequence[str], keys: Sequence[str], threads: int = 2, min_identity: float = 0.5,
                     maxaccepts: int = 10, maxrejects: int = 64,
                     strand: str = "plus") -> list[tuple[Optional[int], float]]:
    """For each query, the index of its best global-alignment key and the identity (%); (None, 0) if no hit.

    vsearch's k-mer prefilter ranks candidates; up to `maxaccepts` are aligned and the one with the
    highest identity is kept (`--maxhits 1`), as BOLD-style identification does. `strand`: vsearch's
    `--strand` (plus, its default: the queries as given; both: their reverse complements too).
    """
    if not vsearch_available():
        raise FileNotFoundError("vsearch is not installed (Debian/Ubuntu: apt-get install vsearch)")
    hits: list[tuple[Optional[int], float]] = [(None, 0.0)] * len(queries)
    with tempfile.TemporaryDirectory(prefix="clibd-vsearch-") as tmp:
        tmpdir = Path(tmp)
        _write_fasta(tmpdir / "q.fa", "q", queries)
        _write_fasta(tmpdir / "k.fa", "k", keys)
        cmd = ["vsearch", "--usearch_global", str(tmpdir / "q.fa"), "--db", str(tmpdir / "k.fa"),
               "--id", str(min_identity), "--maxaccepts", str(maxaccepts), "--maxrejects", str(maxrejects),
               "--maxhits", "1", "--strand", strand, "--userout", str(tmpdir / "hits.tsv"),
               "--userfields", "query+target+id",
               "--threads", str(threads), "--quiet"]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        for line in (tmpdir / "hits.tsv").read_text().splitlines():
            q, k, ident = line.split("\t")
            hits[int(q[1:])] = (int(k[1:]), float(ident))
    return hits
