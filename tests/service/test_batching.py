"""The micro-batcher: lone requests go at once, overlapping ones share encoder calls, failures reach everyone."""
import asyncio
import time

import numpy as np

from clibd.service.batching import MicroBatcher


def _encode(calls):
    def encode(items):
        calls.append(len(items))
        time.sleep(0.01)
        return np.asarray([[float(x)] for x in items])
    return encode


def test_sequential_requests_wait_for_nobody():
    """With a one-minute batching window, five sequential requests still finish: a lone request never waits."""
    async def run():
        calls = []
        b = MicroBatcher(_encode(calls), max_batch=8, wait_ms=60_000)
        for i in range(5):
            assert (await asyncio.wait_for(b.submit_many([i]), timeout=30))[0, 0] == i
        await b.close()
        return calls
    assert asyncio.run(run()) == [1] * 5


def test_overlapping_requests_share_batches_and_get_their_own_rows():
    async def run():
        calls = []
        b = MicroBatcher(_encode(calls), max_batch=8, wait_ms=20)
        out = await asyncio.gather(*(b.submit_many([i]) for i in range(24)))
        await b.close()
        return calls, out
    calls, out = asyncio.run(run())
    assert [o[0, 0] for o in out] == list(range(24))
    assert sum(calls) == 24 and max(calls) > 1 and len(calls) < 24


def test_an_encoder_failure_reaches_every_waiter_and_the_batcher_goes_on():
    async def run():
        state = {"fail": True}

        def encode(items):
            if state["fail"]:
                state["fail"] = False
                raise RuntimeError("encoder broke")
            return np.ones((len(items), 1))
        b = MicroBatcher(encode, max_batch=4, wait_ms=5)
        results = await asyncio.gather(*(b.submit_many([i]) for i in range(3)), return_exceptions=True)
        after = await b.submit_many([9])
        await b.close()
        return results, after
    results, after = asyncio.run(run())
    assert any(isinstance(r, RuntimeError) for r in results)
    assert after.shape == (1, 1)


def test_a_lone_request_waits_while_other_requests_are_in_flight():
    """The caller's in-flight count decides: with others being served, the window is kept open for them."""
    async def run():
        calls, in_flight = [], {"n": 3}
        b = MicroBatcher(_encode(calls), max_batch=8, wait_ms=300, in_flight=lambda: in_flight["n"])
        first = asyncio.ensure_future(b.submit_many([1]))
        await asyncio.sleep(0.1)  # inside the window: joins the first batch
        second = await b.submit_many([2])
        await first
        in_flight["n"] = 1
        third = await asyncio.wait_for(b.submit_many([3]), timeout=30)
        await b.close()
        return calls, second, third
    calls, second, third = asyncio.run(run())
    assert calls == [2, 1] and second[0, 0] == 2 and third[0, 0] == 3
