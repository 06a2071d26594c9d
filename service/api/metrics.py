"""Prometheus metrics of the API process."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()
REQUESTS = Counter("clibd_http_requests_total", "HTTP requests", ["route", "status"], registry=REGISTRY)
LATENCY = Histogram("clibd_http_request_seconds", "request latency", ["route"], registry=REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
IDENTIFICATIONS = Counter("clibd_identifications_total", "identify answers", ["status"], registry=REGISTRY)
BATCHES = Gauge("clibd_encoder_batches", "encoder batches run by the micro-batcher", ["modality"], registry=REGISTRY)
BATCHED_ITEMS = Gauge("clibd_encoder_batched_items", "items encoded by the micro-batcher", ["modality"],
                      registry=REGISTRY)
INDEX_KEYS = Gauge("clibd_index_keys", "searchable reference keys", ["modality"], registry=REGISTRY)


def refresh_gauges(state) -> None:
    """Read the batchers' and the index's counts into the gauges."""
    for name, batcher in (("dna", state.dna_batcher), ("image", state.image_batcher)):
        if batcher is not None:
            BATCHES.labels(name).set(batcher.batches)
            BATCHED_ITEMS.labels(name).set(batcher.items)
    ident = state.runtime.identifier
    if ident is not None:
        for m in ident.searcher.modalities:
            INDEX_KEYS.labels(m).set(ident.searcher.size(m))
