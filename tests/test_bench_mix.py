"""The browsing mix's pure parts: its proportions, its interleaving from the seed, which requests
revalidate with ``If-None-Match``, how its answers are counted, and the load client reading a 304
(no stack, no load)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from benchmarks.search_quality.client import LoadClient
from benchmarks.search_quality.load import Request, Shot
from benchmarks.suite import mix
from benchmarks.suite.mix_run import fell_behind, statuses

SHOPPER = {"Authorization": "Bearer t"}


def sources(orders: int = 200) -> dict[str, list[Request]]:
    return {
        "product_detail": [Request(f"/api/v1/products/p{i}") for i in range(300)],
        "listing": [Request("/api/v1/products", {"sort": "newest", "brand": f"b{i}"}) for i in range(40)],
        "similar": [Request(f"/api/v1/products/p{i}/similar", {"limit": 10}) for i in range(300)],
        "product_fit": [Request(f"/api/v1/products/p{i}/fit", None, SHOPPER) for i in range(100)],
        "cart": [Request("/api/v1/cart", None, SHOPPER)],
        "order_list": [Request("/api/v1/orders", None, SHOPPER)],
        "order_create": [
            Request("/api/v1/orders", None, {**SHOPPER, "Idempotency-Key": f"k{i}"}, "POST", b"{}")
            for i in range(orders)
        ],
        "search": [Request("/api/v1/products", {"q": f"red dress {i}"}) for i in range(30)],
    }


def test_the_mix_holds_each_kinds_share_exactly() -> None:
    slots = mix.plan_mix(sources(), 10_000, seed=7)
    assert Counter(slot.kind for slot in slots) == {
        "product_detail": 4_500,
        "listing": 3_000,
        "similar": 1_000,
        "product_fit": 800,
        "cart": 200,
        "order_list": 200,
        "order_create": 100,
        "search": 200,
    }
    # Cart and orders together are 5 %, and the shares add up for a total that does not divide.
    assert sum(mix.counts(10_000)[k] for k in ("cart", "order_list", "order_create")) == 500
    odd = mix.counts(1_237)
    assert sum(odd.values()) == 1_237
    assert all(abs(n - 1_237 * mix.WEIGHTS[k]) < 1 for k, n in odd.items())


def test_the_kinds_are_interleaved_from_the_seed() -> None:
    slots = mix.plan_mix(sources(), 2_000, seed=7)
    again = mix.plan_mix(sources(), 2_000, seed=7)
    other = mix.plan_mix(sources(), 2_000, seed=8)
    assert slots == again
    assert [s.kind for s in slots] != [s.kind for s in other]
    # Not in blocks: every tenth of the mix has its share of product pages and listings.
    for tenth in range(10):
        kinds = Counter(s.kind for s in slots[tenth * 200 : (tenth + 1) * 200])
        assert 60 <= kinds["product_detail"] <= 120
        assert 35 <= kinds["listing"] <= 85
    # Each kind takes its scenario's requests in turn: the spread over products is the scenario's.
    pages = [s.request.path for s in slots if s.kind == "product_detail"]
    assert pages[:300] == [f"/api/v1/products/p{i}" for i in range(300)]


def test_half_the_public_requests_revalidate_and_only_they_carry_if_none_match() -> None:
    slots = mix.plan_mix(sources(), 10_000, seed=7)
    public = [s for s in slots if s.kind in mix.PUBLIC]
    assert len(public) == 8_700
    assert sum(s.revalidate for s in public) == 4_350
    assert mix.composition(slots)["public_revalidating_share"] == 0.5
    assert not [s for s in slots if s.revalidate and s.kind not in mix.PUBLIC]
    # Spread over the public kinds, not one of them.
    revalidating = Counter(s.kind for s in public if s.revalidate)
    assert 0.4 < revalidating["product_detail"] / 4_500 < 0.6
    assert 0.4 < revalidating["listing"] / 3_000 < 0.6

    wanted = mix.to_revalidate(slots)
    keys = [mix.url_key(r) for r in wanted]
    assert len(keys) == len(set(keys))  # each page fetched once
    etags = {key: f'"{n}"' for n, key in enumerate(keys)}
    requests = mix.attach(slots, etags)
    assert len(requests) == len(slots)
    for slot, request in zip(slots, requests, strict=True):
        headers = request.headers or {}
        if slot.revalidate:
            assert headers["If-None-Match"] == etags[mix.url_key(slot.request)]
            assert (request.path, request.params) == (slot.request.path, slot.request.params)
        else:
            assert "If-None-Match" not in headers
            assert request == slot.request
    assert "?" in mix.url_key(Request("/api/v1/products", {"brand": "b1", "sort": "newest"}))
    assert mix.url_key(Request("/api/v1/products", {"brand": "b1", "sort": "newest"})) == (
        "/api/v1/products?brand=b1&sort=newest"
    )
    with pytest.raises(KeyError):
        mix.attach(slots, {})  # no ETag fetched for a revalidating page: no silent plain request


def test_share_zero_revalidates_nothing() -> None:
    slots = mix.plan_mix(sources(), 1_000, seed=7, share=0.0)
    assert not any(s.revalidate for s in slots)
    assert mix.to_revalidate(slots) == []


def test_order_requests_are_never_sent_twice_and_a_short_source_is_refused() -> None:
    slots = mix.plan_mix(sources(orders=100), 10_000, seed=7)
    keys = [(s.request.headers or {})["Idempotency-Key"] for s in slots if s.kind == "order_create"]
    assert len(keys) == len(set(keys)) == 100
    with pytest.raises(ValueError, match="needs 100 order_create requests, the scenario has 99"):
        mix.plan_mix(sources(orders=99), 10_000, seed=7)
    empty = sources() | {"search": []}
    with pytest.raises(ValueError, match="search requests, the scenario has 0"):
        mix.plan_mix(empty, 1_000, seed=7)


def test_answers_are_counted_by_status_with_the_share_of_304s() -> None:
    inm = {"If-None-Match": '"a"'}
    requests = [Request("/a", None, inm), Request("/b"), Request("/c", None, inm), Request("/d")]
    # The timed run starts at index 2 (after a warm-up of two) and wraps around.
    shots = [Shot(status=304), Shot(status=200), Shot(status=200), Shot(status=200), Shot(status=None)]
    counted = statuses(shots, requests, start=2)
    assert counted == {
        "by_status": {"200": 3, "304": 1, "None": 1},
        "revalidating_requests": 3,  # indexes 2, 0 and 2 again
        "not_modified": 1,
        "not_modified_share": 0.2,
        "not_modified_share_of_revalidating": 0.3333,
    }
    assert statuses([], requests, 0)["not_modified_share"] is None


def test_a_run_whose_answers_fell_behind_the_offered_rate_says_so() -> None:
    assert fell_behind(1_450.0, 1_500) is None
    assert fell_behind(258.0, 1_500) == (
        "answered 258 req/s successfully of 1500 offered: the server fell behind, "
        "latency grows with the run's length"
    )
    assert fell_behind(None, 1_500) is not None  # nothing answered


def test_the_load_client_reads_a_304_without_a_body_or_content_length() -> None:
    async def scenario() -> tuple[int, bytes, int, bytes]:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for answer in (
                b'HTTP/1.1 304 Not Modified\r\nETag: "a"\r\n\r\n',
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            ):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = LoadClient(f"http://127.0.0.1:{port}", max_connections=1, timeout=5)
        try:
            first = await client.get("/p", headers={"If-None-Match": '"a"'})
            second = await client.get("/p")  # the same connection: nothing of the 304 left over
        finally:
            await client.aclose()
            server.close()
        return first.status_code, first.content, second.status_code, second.content

    assert asyncio.run(scenario()) == (304, b"", 200, b"ok")
