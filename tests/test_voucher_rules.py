"""The voucher rules, without a database: what a code covers, takes off and shares over lines."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core.rules.vouchers import Discount, Item, Terms, amount_off, covers, price, usage_refusal

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
STORE, OTHER_STORE = uuid.uuid4(), uuid.uuid4()
DRESSES, WOMEN, SHOES = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
ONLY_OTHER = frozenset({OTHER_STORE})


def item(amount: int, *, vendor: uuid.UUID = STORE, categories: tuple[uuid.UUID, ...] = ()) -> Item:
    return Item(product_id=uuid.uuid4(), vendor_id=vendor, categories=frozenset(categories), amount=amount)


def test_percent_is_taken_of_the_covered_items_rounded_down_and_capped() -> None:
    ten = Terms(kind="percent", value=1_000)
    assert amount_off(ten, 12_345) == 1_234
    assert amount_off(Terms(kind="percent", value=1_000, max_discount=500), 12_345) == 500
    assert amount_off(Terms(kind="percent", value=10_000), 7_000) == 7_000
    assert amount_off(ten, 0) == 0


def test_a_fixed_amount_never_exceeds_what_it_covers() -> None:
    assert amount_off(Terms(kind="fixed", value=5_000), 20_000) == 5_000
    assert amount_off(Terms(kind="fixed", value=5_000), 3_000) == 3_000
    assert amount_off(Terms(kind="fixed", value=5_000, max_discount=4_000), 20_000) == 4_000


def test_scope_decides_which_lines_are_covered() -> None:
    dress = item(10_000, categories=(DRESSES, WOMEN))
    shoe = item(8_000, vendor=OTHER_STORE, categories=(SHOES,))
    everything = Terms(kind="fixed", value=1)
    assert [covers(everything, dress), covers(everything, shoe)] == [True, True]
    by_store = Terms(kind="fixed", value=1, scope="vendor", scope_ids=frozenset({OTHER_STORE}))
    assert [covers(by_store, dress), covers(by_store, shoe)] == [False, True]
    # A category covers its sub-categories' items (an item carries its category's ancestors).
    by_category = Terms(kind="fixed", value=1, scope="category", scope_ids=frozenset({WOMEN}))
    assert [covers(by_category, dress), covers(by_category, shoe)] == [True, False]
    by_product = Terms(kind="fixed", value=1, scope="products", scope_ids=frozenset({shoe.product_id}))
    assert [covers(by_product, dress), covers(by_product, shoe)] == [False, True]


def test_a_stores_own_code_covers_only_its_items_whatever_the_scope() -> None:
    dress = item(10_000, categories=(WOMEN,))
    rival_dress = item(10_000, vendor=OTHER_STORE, categories=(WOMEN,))
    own = Terms(kind="fixed", value=1, vendor_id=STORE)
    assert [covers(own, dress), covers(own, rival_dress)] == [True, False]
    own_women = Terms(kind="fixed", value=1, vendor_id=STORE, scope="category", scope_ids=frozenset({WOMEN}))
    assert [covers(own_women, dress), covers(own_women, rival_dress)] == [True, False]


def test_the_discount_is_shared_over_covered_lines_by_amount_and_adds_up() -> None:
    lines = [item(3_333), item(6_667, vendor=OTHER_STORE), item(1_000)]
    found = price(Terms(kind="fixed", value=1_001, vendor_id=STORE), lines, NOW)
    assert isinstance(found, Discount)
    assert found.eligible_subtotal == 4_333
    assert found.shares[1] == 0  # not covered
    assert sum(found.shares) == found.amount == 1_001
    assert all(0 <= share <= line.amount for share, line in zip(found.shares, lines, strict=True))
    whole = price(Terms(kind="percent", value=10_000), lines, NOW)
    assert isinstance(whole, Discount)
    assert list(whole.shares) == [line.amount for line in lines]


@pytest.mark.parametrize(
    ("terms", "refusal"),
    [
        (Terms(kind="fixed", value=1, starts_at=NOW + timedelta(seconds=1)), "not_yet_valid"),
        (Terms(kind="fixed", value=1, ends_at=NOW), "expired"),
        (Terms(kind="fixed", value=1, scope="vendor", scope_ids=frozenset({uuid.uuid4()})), "not_applicable"),
        (Terms(kind="fixed", value=1, min_subtotal=10_100), "below_minimum"),
        # 1 % of 99 minor units rounds to nothing: the code gives nothing, so it does not apply.
        (Terms(kind="percent", value=100, scope="vendor", scope_ids=ONLY_OTHER), "not_applicable"),
    ],
)
def test_price_says_why_a_code_gives_nothing(terms: Terms, refusal: str) -> None:
    lines = [item(10_000), item(99, vendor=OTHER_STORE)]
    assert price(terms, lines, NOW) == refusal


def test_the_minimum_is_on_the_covered_items_only() -> None:
    lines = [item(6_000), item(50_000, vendor=OTHER_STORE)]
    terms = Terms(kind="fixed", value=1_000, scope="vendor", scope_ids=frozenset({STORE}), min_subtotal=6_001)
    assert price(terms, lines, NOW) == "below_minimum"
    started = Terms(kind="fixed", value=1_000, min_subtotal=6_000, starts_at=NOW, ends_at=NOW + timedelta(1))
    assert isinstance(price(started, lines[:1], NOW), Discount)  # the window includes its start


def test_use_limits() -> None:
    capped = Terms(kind="fixed", value=1, total_cap=5, per_customer_limit=1)
    assert usage_refusal(capped, redeemed=4, used_by_customer=0) is None
    assert usage_refusal(capped, redeemed=5, used_by_customer=0) == "exhausted"
    assert usage_refusal(capped, redeemed=1, used_by_customer=1) == "limit_reached"
    assert usage_refusal(Terms(kind="fixed", value=1), redeemed=10**6, used_by_customer=10**6) is None
