"""Catalog and vendor endpoints on the real database: listing, search, detail, ownership, validation."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Vendor
from tests.support.catalog import category, make_product, make_store
from tests.support.http import problem
from tests.support.identity import bearer, login, make_user

pytestmark = pytest.mark.anyio

API = "/api/v1"


async def listing(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/products", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


async def vendor_auth(client: httpx.AsyncClient, session: AsyncSession) -> tuple[Vendor, dict[str, str]]:
    owner = await make_user(session, role="vendor")
    store = await make_store(session, owner)
    return store, bearer(await login(client, owner.email))


# --- public catalog ---------------------------------------------------------------------------


async def test_category_tree(client: httpx.AsyncClient) -> None:
    tree = (await client.get(f"{API}/categories")).json()["items"]
    women = next(node for node in tree if node["slug"] == "women")
    tops = next(node for node in women["children"] if node["slug"] == "women-tops")
    assert tops["garment"] == "tops"
    assert {child["slug"] for child in tops["children"]} >= {"women-tops-t-shirts", "women-tops-knitwear"}
    assert any(node["slug"] == "men" for node in tree)


async def test_listing_shows_only_active_products_of_active_stores(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    active = await make_product(session, store, title="Active tee")
    draft = await make_product(session, store, title="Draft tee", status="draft")
    archived = await make_product(session, store, title="Archived tee", status="archived")
    listed = ids(await listing(client, vendor=str(store.id)))
    assert listed == [str(active.id)]
    summary = (await listing(client, vendor=str(store.id)))[0]
    assert summary["price"] == {"amount": 1_500_000, "currency": "NGN"}
    assert summary["vendor"] == {"id": str(store.id), "name": store.name}
    assert {"id", "title", "slug", "category_id", "brand", "thumbnail_url", "in_stock"} <= summary.keys()
    for hidden in (draft, archived):
        problem(await client.get(f"{API}/products/{hidden.id}"), 404)


async def test_suspending_a_store_hides_its_products(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    product = await make_product(session, store)
    staff = await make_user(session, role="staff")
    auth = bearer(await login(client, staff.email))
    suspended = await client.patch(
        f"{API}/staff/vendors/{store.id}/status", headers=auth, json={"status": "suspended"}
    )
    assert suspended.status_code == 200, suspended.text
    assert await listing(client, vendor=str(store.id)) == []
    problem(await client.get(f"{API}/products/{product.id}"), 404)
    problem(await client.get(f"{API}/vendors/{store.id}"), 404)
    await client.patch(f"{API}/staff/vendors/{store.id}/status", headers=auth, json={"status": "active"})
    assert ids(await listing(client, vendor=str(store.id))) == [str(product.id)]


async def test_filters(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store = await make_store(session)
    tee = await make_product(
        session,
        store,
        title="Tee",
        price=900_000,
        brand="Lagos Loom",
        variants=[("S", "Red", 3), ("M", "Red", 0)],
    )
    jeans = await make_product(
        session,
        store,
        category_slug="women-bottoms-jeans",
        title="Jeans",
        price=2_500_000,
        variants=[("M", "Blue", 4)],
    )
    sold_out = await make_product(
        session,
        store,
        category_slug="men-tops-shirts",
        title="Shirt",
        price=1_800_000,
        variants=[("L", "white", 0)],
    )
    v = str(store.id)
    assert set(ids(await listing(client, vendor=v, category="women"))) == {str(tee.id), str(jeans.id)}
    women_tops = await category(session, "women-tops")
    assert ids(await listing(client, vendor=v, category=str(women_tops.id))) == [str(tee.id)]
    assert ids(await listing(client, vendor=v, brand="lagos-loom")) == [str(tee.id)]
    assert ids(await listing(client, vendor=v, brand="Lagos Loom")) == [str(tee.id)]
    assert await listing(client, vendor=v, brand="no-such-brand") == []
    assert ids(await listing(client, vendor=v, min_price=1_000_000, max_price=2_000_000)) == [
        str(sold_out.id)
    ]
    assert set(ids(await listing(client, vendor=v, size="m"))) == {str(tee.id), str(jeans.id)}
    assert ids(await listing(client, vendor=v, color="BLUE")) == [str(jeans.id)]
    assert set(ids(await listing(client, vendor=v, in_stock=True))) == {str(tee.id), str(jeans.id)}
    assert ids(await listing(client, vendor=v, in_stock=False)) == [str(sold_out.id)]
    problem(await client.get(f"{API}/products", params={"min_price": 5, "max_price": 1}), 422)
    problem(await client.get(f"{API}/products", params={"category": "no-such-category"}), 422)
    problem(await client.get(f"{API}/products", params={"sort": "cheapest"}), 422)
    problem(await client.get(f"{API}/products", params={"limit": 101}), 422)
    problem(await client.get(f"{API}/products", params={"min_price": -1}), 422)


async def test_sorts(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store = await make_store(session)
    made = [await make_product(session, store, title=f"Item {p}", price=p) for p in (3_000, 1_000, 2_000)]
    v = str(store.id)
    by_price = [p.id for p in sorted(made, key=lambda p: p.min_price)]
    assert ids(await listing(client, vendor=v, sort="price_asc")) == [str(i) for i in by_price]
    assert ids(await listing(client, vendor=v, sort="price_desc")) == [str(i) for i in reversed(by_price)]
    assert ids(await listing(client, vendor=v, sort="newest")) == [str(p.id) for p in reversed(made)]
    assert ids(await listing(client, vendor=v)) == [str(p.id) for p in reversed(made)]  # default: newest


@pytest.mark.parametrize("sort", ["newest", "price_asc", "price_desc", "relevance"])
async def test_walking_pages_while_products_are_added(
    client: httpx.AsyncClient, session: AsyncSession, sort: str
) -> None:
    store = await make_store(session)
    existing = {
        str((await make_product(session, store, title=f"Linen shirt {i}", price=1_000 + (i % 4) * 500)).id)
        for i in range(17)
    }
    params: dict[str, Any] = {"vendor": str(store.id), "sort": sort, "limit": 5, "q": "linen"}
    seen: list[str] = []
    cursor = None
    for page_number in range(20):
        response = await client.get(
            f"{API}/products", params={**params, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        seen += ids(page["items"])
        # Meanwhile, other vendors' shoppers keep the catalog busy.
        await make_product(session, store, title=f"Linen shirt new {page_number}", price=1_250)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a product was listed twice"
    assert existing <= set(seen), "a product that existed before the walk was skipped"


async def test_cursor_of_another_sort_is_rejected(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store = await make_store(session)
    for i in range(3):
        await make_product(session, store, title=f"Item {i}")
    page = (await client.get(f"{API}/products", params={"vendor": str(store.id), "limit": 1})).json()
    problem(
        await client.get(f"{API}/products", params={"sort": "price_asc", "cursor": page["next_cursor"]}), 422
    )
    problem(await client.get(f"{API}/products", params={"cursor": "bm90IGEgY3Vyc29y"}), 422)


async def test_search_ranks_title_matches_first_and_understands_websearch_syntax(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    v = str(store.id)
    in_title = await make_product(session, store, title="Silk wrap dress", description="Flowing and light.")
    in_description = await make_product(
        session, store, title="Evening gown", description="Lined with silk for a smooth drape."
    )
    wrap_top = await make_product(session, store, title="Wrap top", description="Cotton jersey.")
    assert ids(await listing(client, vendor=v, q="silk")) == [str(in_title.id), str(in_description.id)]
    assert ids(await listing(client, vendor=v, q='"wrap dress"')) == [str(in_title.id)]
    assert ids(await listing(client, vendor=v, q="wrap -silk")) == [str(wrap_top.id)]
    assert set(ids(await listing(client, vendor=v, q="silk OR cotton"))) == {
        str(in_title.id),
        str(in_description.id),
        str(wrap_top.id),
    }
    # As-you-type: the last word is a prefix.
    assert str(in_title.id) in ids(await listing(client, vendor=v, q="sil"))
    assert ids(await listing(client, vendor=v, q="wrap dre")) == [str(in_title.id)]
    for hostile in ("'; DROP TABLE products; --", "silk' OR 1=1 --", "!!!", "&|:*()", "<script>"):
        response = await client.get(f"{API}/products", params={"q": hostile})
        assert response.status_code == 200, (hostile, response.text)
    assert (await client.get(f"{API}/products")).status_code == 200  # the table is still there


async def test_product_detail(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store = await make_store(session)
    product = await make_product(
        session, store, brand="Adire House", variants=[("S", "indigo", 2), ("M", "indigo", 0)]
    )
    body = (await client.get(f"{API}/products/{product.id}")).json()
    assert body["id"] == str(product.id)
    assert body["brand"] == "Adire House"
    assert body["vendor"]["id"] == str(store.id)
    assert [(v["size"], v["color"], v["in_stock"]) for v in body["variants"]] == [
        ("S", "indigo", True),
        ("M", "indigo", False),
    ]
    assert body["variants"][0]["price"] == {"amount": 1_500_000, "currency": "NGN"}
    assert body["images"] == []
    assert body["size_chart"] is None
    assert body["rating"] == {"average": None, "count": 0}
    problem(await client.get(f"{API}/products/{uuid.uuid4()}"), 404)
    problem(await client.get(f"{API}/products/not-a-uuid"), 404)


async def test_owner_sees_own_draft_others_do_not(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store, auth = await vendor_auth(client, session)
    draft = await make_product(session, store, status="draft")
    assert (await client.get(f"{API}/products/{draft.id}", headers=auth)).status_code == 200
    _, other_auth = await vendor_auth(client, session)
    problem(await client.get(f"{API}/products/{draft.id}", headers=other_auth), 404)


async def test_brands_are_listed(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store = await make_store(session)
    await make_product(session, store, brand="Orange Culture")
    brands = (await client.get(f"{API}/brands", params={"limit": 100})).json()
    assert "Orange Culture" in [b["name"] for b in brands["items"]]


# --- stores -------------------------------------------------------------------------------------


async def test_open_a_store(client: httpx.AsyncClient, session: AsyncSession) -> None:
    owner = await make_user(session, role="vendor")
    auth = bearer(await login(client, owner.email))
    name = f"Bukky's Boutique {uuid.uuid4().hex[:6]}"
    created = await client.post(
        f"{API}/vendors", headers=auth, json={"name": name, "description": "Ready-to-wear."}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == name
    assert body["status"] == "active"
    assert (await client.get(f"{API}/vendors/{body['id']}")).json()["slug"] == body["slug"]
    problem(await client.post(f"{API}/vendors", headers=auth, json={"name": "Second store"}), 409)

    other = await make_user(session, role="vendor")
    other_auth = bearer(await login(client, other.email))
    problem(await client.post(f"{API}/vendors", headers=other_auth, json={"name": name}), 409)
    problem(await client.post(f"{API}/vendors", headers=other_auth, json={"name": ""}), 422)
    problem(await client.post(f"{API}/vendors", json={"name": "Anonymous"}), 401)
    shopper = await make_user(session)
    problem(
        await client.post(
            f"{API}/vendors", headers=bearer(await login(client, shopper.email)), json={"name": "X Y"}
        ),
        403,
    )
    problem(await client.get(f"{API}/vendors/{uuid.uuid4()}"), 404)


# --- vendor products ------------------------------------------------------------------------


async def test_vendor_creates_edits_and_activates_a_product(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, auth = await vendor_auth(client, session)
    dresses = await category(session, "women-dresses-maxi-dresses")
    payload = {
        "title": "Ankara maxi dress",
        "description": "Wax print cotton, fully lined.",
        "category_id": str(dresses.id),
        "brand": "Lagos Loom",
        "price": {"amount": 4_500_000, "currency": "NGN"},
        "attributes": {"material": "cotton"},
    }
    created = await client.post(f"{API}/vendor/products", headers=auth, json=payload)
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["status"] == "draft"
    assert product["brand"] == "Lagos Loom"
    assert product["attributes"] == {"material": "cotton"}
    pid = product["id"]
    assert pid not in ids(await listing(client, vendor=str(store.id)))

    problem(await client.patch(f"{API}/vendor/products/{pid}", headers=auth, json={"status": "active"}), 422)
    variant = await client.post(
        f"{API}/vendor/products/{pid}/variants",
        headers=auth,
        json={"sku": "ANK-MAXI-M-RED", "size": "m", "color": "Red", "stock": 4},
    )
    assert variant.status_code == 201, variant.text
    assert variant.json()["size"] == "M"
    assert variant.json()["price"] == {"amount": 4_500_000, "currency": "NGN"}
    activated = await client.patch(
        f"{API}/vendor/products/{pid}",
        headers=auth,
        json={"status": "active", "title": "Ankara maxi dress (red)"},
    )
    assert activated.status_code == 200, activated.text
    assert activated.json()["status"] == "active"
    assert pid in ids(await listing(client, vendor=str(store.id), q="ankara"))

    mine = (await client.get(f"{API}/vendor/products", headers=auth)).json()["items"]
    assert ids(mine) == [pid]
    assert mine[0]["brand"] == "Lagos Loom"
    assert mine[0]["vendor"] == {"id": str(store.id), "name": store.name}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price": {"amount": 100, "currency": "USD"}}, "price.currency"),
        ({"price": {"amount": 0, "currency": "NGN"}}, "price.amount"),
        ({"category_id": str(uuid.UUID(int=1))}, "category_id"),
        ({"title": ""}, "title"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_product_validation(
    client: httpx.AsyncClient, session: AsyncSession, change: dict[str, Any], field: str
) -> None:
    _, auth = await vendor_auth(client, session)
    tees = await category(session, "men-tops-t-shirts")
    payload = {
        "title": "Tee",
        "category_id": str(tees.id),
        "price": {"amount": 500_000, "currency": "NGN"},
        **change,
    }
    errors = problem(await client.post(f"{API}/vendor/products", headers=auth, json=payload), 422)["errors"]
    assert errors[0]["field"] == field, errors


async def test_vendor_endpoints_need_a_vendor_with_a_store(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    problem(await client.get(f"{API}/vendor/products"), 401)
    shopper = await make_user(session)
    problem(
        await client.get(f"{API}/vendor/products", headers=bearer(await login(client, shopper.email))), 403
    )
    storeless = await make_user(session, role="vendor")
    body = problem(
        await client.get(f"{API}/vendor/products", headers=bearer(await login(client, storeless.email))), 403
    )
    assert body["title"] == "Store required"


async def test_another_vendors_objects_are_404(client: httpx.AsyncClient, session: AsyncSession) -> None:
    theirs = await make_store(session)
    product = await make_product(session, theirs, variants=[("M", "black", 1)])
    detail = (await client.get(f"{API}/products/{product.id}")).json()
    variant_id = detail["variants"][0]["id"]
    _, auth = await vendor_auth(client, session)
    problem(
        await client.patch(f"{API}/vendor/products/{product.id}", headers=auth, json={"title": "Mine now"}),
        404,
    )
    problem(await client.get(f"{API}/vendor/products/{product.id}", headers=auth), 404)
    problem(
        await client.post(
            f"{API}/vendor/products/{product.id}/variants",
            headers=auth,
            json={"sku": "STOLEN-1", "size": "L", "color": "black", "stock": 1},
        ),
        404,
    )
    problem(await client.patch(f"{API}/vendor/variants/{variant_id}", headers=auth, json={"stock": 0}), 404)
    problem(
        await client.put(
            f"{API}/vendor/products/{product.id}/size-chart",
            headers=auth,
            json={"rows": [{"size": "M", "chest_cm": [90, 95]}]},
        ),
        404,
    )
    problem(
        await client.post(
            f"{API}/vendor/products/{product.id}/images", headers=auth, files={"image": ("a.jpg", b"x")}
        ),
        404,
    )


async def test_variants(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store, auth = await vendor_auth(client, session)
    product = await make_product(session, store, variants=[])
    url = f"{API}/vendor/products/{product.id}/variants"
    first = await client.post(
        url,
        headers=auth,
        json={
            "sku": "TEE-S-BLK",
            "size": "S",
            "color": "black",
            "stock": 3,
            "price": {"amount": 1_200_000, "currency": "NGN"},
        },
    )
    assert first.status_code == 201, first.text
    problem(
        await client.post(
            url, headers=auth, json={"sku": "TEE-S-BLK", "size": "M", "color": "black", "stock": 1}
        ),
        409,
    )
    problem(
        await client.post(
            url, headers=auth, json={"sku": "TEE-S-BLK-2", "size": "s", "color": "Black", "stock": 1}
        ),
        409,
    )
    problem(
        await client.post(
            url, headers=auth, json={"sku": "TEE-X", "size": "M", "color": "black", "stock": -1}
        ),
        422,
    )
    problem(
        await client.post(
            url, headers=auth, json={"sku": "bad sku!", "size": "M", "color": "black", "stock": 1}
        ),
        422,
    )

    vid = first.json()["id"]
    updated = await client.patch(f"{API}/vendor/variants/{vid}", headers=auth, json={"stock": 0})
    assert updated.json()["stock"] == 0
    assert updated.json()["in_stock"] is False
    repriced = await client.patch(f"{API}/vendor/variants/{vid}", headers=auth, json={"price": None})
    assert repriced.json()["price"]["amount"] == product.price_amount
    problem(await client.patch(f"{API}/vendor/variants/{uuid.uuid4()}", headers=auth, json={"stock": 1}), 404)
    listed = await listing(client, vendor=str(store.id))
    assert listed[0]["in_stock"] is False


async def test_size_chart(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store, auth = await vendor_auth(client, session)
    product = await make_product(session, store)
    url = f"{API}/vendor/products/{product.id}/size-chart"
    chart = {
        "rows": [
            {"size": "S", "chest_cm": [84, 89], "waist_cm": [68, 73]},
            {"size": "M", "chest_cm": [89, 94], "waist_cm": [73, 78]},
        ]
    }
    saved = await client.put(url, headers=auth, json=chart)
    assert saved.status_code == 200, saved.text
    assert saved.json() == {
        "rows": [
            {"size": "S", "chest_cm": [84.0, 89.0], "waist_cm": [68.0, 73.0]},
            {"size": "M", "chest_cm": [89.0, 94.0], "waist_cm": [73.0, 78.0]},
        ]
    }
    detail = (await client.get(f"{API}/products/{product.id}")).json()
    assert detail["size_chart"]["rows"][1]["size"] == "M"

    bad = {
        "min above max": ({"rows": [{"size": "S", "chest_cm": [95, 90]}]}, "rows[0].chest_cm"),
        "not human": ({"rows": [{"size": "S", "waist_cm": [500, 600]}]}, "rows[0].waist_cm"),
        "duplicate size": (
            {"rows": [{"size": "S", "hip_cm": [90, 95]}, {"size": "s", "hip_cm": [95, 99]}]},
            "rows[1].size",
        ),
        "no measurement": ({"rows": [{"size": "S"}]}, "rows[0]"),
        "unknown measurement": ({"rows": [{"size": "S", "neck_cm": [30, 40]}]}, "rows[0].neck_cm"),
        "empty": ({"rows": []}, "rows"),
    }
    for name, (body, field) in bad.items():
        errors = problem(await client.put(url, headers=auth, json=body), 422)["errors"]
        assert errors[0]["field"] == field, (name, errors)
