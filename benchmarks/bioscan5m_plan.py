"""The index plan for BIOSCAN-5M, extrapolated from the committed 1M-key measurements (and checked against the
5M-key run where one is committed).

    python -m benchmarks.bioscan5m_plan

BIOSCAN-5M has 5,150,850 records, each with a photo, and about 2.3M distinct barcodes (Gharaee et al., 2024,
arXiv:2406.12723). Image keys: one per record; DNA keys: one per distinct barcode is enough for identification.
Scaling rules, stated so they can be checked: memory is per-key (linear in N); IVF build = training on a
fixed-size sample + adding (linear in N), taken as linear in N as an upper bound; HNSW build ~ N log N;
IVF recall holds when nlist ~ 4 sqrt(N) and nprobe scales with nlist (what `index.factory` does); HNSW recall
at a fixed efSearch only falls with N, so its 1M figure is an upper bound. Exact vectors are kept beside each
index (memory-mapped, for compaction and re-ranking) and are counted on disk, not in RAM.
Writes benchmarks/results/bioscan5m_plan.{json,md}.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
KEYS = {"image": 5_150_850, "dna": 2_300_000}
BUDGET_GB = 24.0


def measured_rows() -> list[dict]:
    """Every 1M-key row committed by benchmarks.index_ann (one per dimension and factory: the fastest run)."""
    best: dict[tuple, dict] = {}
    for path in sorted(RESULTS.glob("index_ann_1000000*.json")):
        for r in json.loads(path.read_text())["rows"]:
            key = (r["dim"], r["factory"])
            if r["keys"] == 1_000_000 and (key not in best or r["qps_batched"] > best[key]["qps_batched"]):
                best[key] = r
    return sorted(best.values(), key=lambda r: (r["dim"], r["factory"]))


def extrapolate(row: dict, n: int) -> dict:
    """One factory's 1M figures scaled to n keys."""
    scale = n / row["keys"]
    if row["factory"].startswith("HNSW"):
        build = row["build_s"] * scale * math.log(n) / math.log(row["keys"])
    else:
        build = row["build_s"] * scale
    return {"factory": row["factory"], "dim": row["dim"], "keys": n, "memory_gb": row["memory_mb"] * scale / 1024,
            "build_s": build, "recall@1": row["recall@1"], "recall@10": row["recall@10"],
            "qps_batched": row["qps_batched"] / (scale if row["factory"] == "Flat" else 1.0),
            "vectors_on_disk_gb": n * row["dim"] * 4 / 2**30}


def main() -> int:
    """Extrapolate, pick a factory per modality and dimension, compare with a committed 5M run."""
    rows = measured_rows()
    if not rows:
        print("no 1M-key results committed: run benchmarks.index_ann --keys 1000000 first", file=sys.stderr)
        return 2
    plan = []
    for modality, n in KEYS.items():
        for row in rows:
            if row["factory"].startswith("IVF") and "SQ8" not in row["factory"]:
                continue
            e = extrapolate(row, n)
            e["modality"] = modality
            if row["factory"].startswith("IVF"):
                nlist = int(2 ** round(math.log2(max(1024, 4 * math.sqrt(n)))))
                e["factory_at_scale"] = f"IVF{nlist},SQ8"
            else:
                e["factory_at_scale"] = row["factory"]
            plan.append(e)
    chosen = {}
    for modality in KEYS:
        for dim in sorted({r["dim"] for r in rows}):
            cands = [p for p in plan if p["modality"] == modality and p["dim"] == dim and p["factory"] != "Flat"
                     and p["memory_gb"] <= BUDGET_GB / 2]
            if cands:
                best = max(cands, key=lambda p: (round(p["recall@1"], 2), -p["memory_gb"]))
                chosen[f"{modality} d={dim}"] = best
    check = []
    for path in sorted(RESULTS.glob("index_ann_5000000*.json")):
        for r in json.loads(path.read_text())["rows"]:
            ref = next((x for x in rows if x["dim"] == r["dim"] and x["factory"].split(",")[1:] ==
                        r["factory"].split(",")[1:] and x["factory"].split(",")[0][:3] == r["factory"][:3]), None)
            if ref:
                pred = extrapolate(ref, r["keys"])
                check.append({"factory": r["factory"], "dim": r["dim"], "keys": r["keys"],
                              "search": r.get("search", ""),
                              "measured": {k: r[k] for k in ("build_s", "recall@1", "recall@10", "memory_mb",
                                                             "qps_batched", "qps_single")},
                              "predicted": {"build_s": pred["build_s"], "recall@1": pred["recall@1"],
                                            "memory_mb": pred["memory_gb"] * 1024}})
    out = {"keys": KEYS, "budget_gb": BUDGET_GB, "plan": plan, "chosen": chosen, "check_against_5m_run": check}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bioscan5m_plan.json").write_text(json.dumps(out, indent=2))
    md = ["# Index plan for BIOSCAN-5M (extrapolated from 1M keys)", "",
          "Command: `python -m benchmarks.bioscan5m_plan` (reads benchmarks/results/index_ann_1000000*.json)", "",
          f"Keys: {KEYS['image']:,} image keys (one per record), {KEYS['dna']:,} DNA keys (distinct barcodes). "
          "Memory, build time and batched exact-search speed scaled from the 1M-key rows by the rules in the "
          "script's docstring; recall is the 1M figure (an upper bound for HNSW); q/s of `Flat` scaled by 1/N, of "
          "the others as measured at 1M.", "",
          "| modality | d | factory at scale | index GB | build min | recall@1 (1M) | q/s batched | exact vectors on disk GB |",
          "|---|---|---|---|---|---|---|---|"]
    md += [f"| {p['modality']} | {p['dim']} | `{p['factory_at_scale']}` | {p['memory_gb']:.1f} | "
           f"{p['build_s'] / 60:.1f} | {p['recall@1']:.3f} | {p['qps_batched']:.0f} | {p['vectors_on_disk_gb']:.1f} |"
           for p in plan]
    md += ["", "Chosen (best recall@1, then least memory, among approximate indexes within half the "
           f"{BUDGET_GB:.0f} GB budget):", ""]
    md += [f"- {k}: `{v['factory_at_scale']}`, {v['memory_gb']:.1f} GB, about {v['build_s'] / 60:.0f} min to build "
           f"on 2 cores, recall@1 about {v['recall@1']:.2f}" for k, v in chosen.items()]
    if check:
        md += ["", "Extrapolation against a committed 5M-key run:", "",
               "| factory | search | d | keys | build s measured / predicted | recall@1 measured / 1M | "
               "q/s batched / single | memory MB measured / predicted |", "|---|---|---|---|---|---|---|---|"]
        md += [f"| `{c['factory']}` | {c['search']} | {c['dim']} | {c['keys']:,} | {c['measured']['build_s']:.0f} / "
               f"{c['predicted']['build_s']:.0f} | {c['measured']['recall@1']:.3f} / {c['predicted']['recall@1']:.3f} | "
               f"{c['measured']['qps_batched']:.0f} / {c['measured']['qps_single']:.0f} | "
               f"{c['measured']['memory_mb']:.0f} / {c['predicted']['memory_mb']:.0f} |" for c in check]
    (RESULTS / "bioscan5m_plan.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
