"""What the demo catalog holds, planned row by row in memory (nothing is written here).

Stores with their owners, brands, products in every leaf category with titles and descriptions
built from their attributes, variants with realistic size runs and stock, size charts from
standard size tables, and which products get a photo. Every choice is drawn from one
``random.Random(seed)`` in a fixed order, so the same seed always plans the same catalog: a
change that draws in another order (or draws more or fewer times) changes every product after
it. ``devstack.demo.catalog`` writes the plan.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat

from core.adapters.passwords import hash_password_sync
from core.rules.fit import fit_profile_key, fit_row_vector
from db.services.catalog.taxonomy import CategoryNode
from db.services.catalog.text import slugify
from devstack.demo import pictures
from devstack.demo.size_tables import ONE_SIZE, SHOE_SIZES, Ranges, chart_for

BRANDS = [
    "Lagos Loom", "Adire House", "Kente & Co", "Ife Atelier", "Orisun", "Eko Threads", "Sahel Linen", "Zuri",
    "Nkem Studio", "Abuja Tailoring", "Calabar Coast", "Jos Highlands", "Kano Indigo", "Enugu Denim",
    "Ibadan Weave", "Oyo Silk", "Delta Dye", "Benin Bronze Wear", "Ayo & Ada", "Tobi Tailors",
]  # fmt: skip
NOUNS: dict[str, list[str]] = {
    "t-shirts": ["T-Shirt", "Crew Tee", "V-Neck Tee"],
    "shirts-and-blouses": ["Blouse", "Shirt", "Wrap Blouse"],
    "shirts": ["Shirt", "Oxford Shirt", "Camp-Collar Shirt"],
    "knitwear": ["Jumper", "Cardigan", "Knit Top"],
    "polos": ["Polo Shirt"],
    "maxi-dresses": ["Maxi Dress"],
    "midi-dresses": ["Midi Dress", "Wrap Dress"],
    "mini-dresses": ["Mini Dress", "Shift Dress"],
    "jeans": ["Straight Jeans", "Skinny Jeans", "Wide-Leg Jeans"],
    "trousers": ["Trousers", "Chinos", "Wide-Leg Trousers"],
    "skirts": ["A-Line Skirt", "Pleated Skirt", "Pencil Skirt"],
    "shorts": ["Shorts", "Bermuda Shorts"],
    "jackets": ["Jacket", "Denim Jacket", "Bomber Jacket"],
    "coats": ["Coat", "Trench Coat"],
    "ankara": ["Ankara Dress", "Ankara Jumpsuit"],
    "kaftans": ["Kaftan"],
    "iro-and-buba": ["Iro and Buba Set"],
    "agbada": ["Agbada Set"],
    "senator-wear": ["Senator Suit"],
    "shoes": ["Sneakers", "Loafers", "Sandals", "Heeled Mules"],
    "bags-and-accessories": ["Tote Bag", "Clutch", "Shoulder Bag"],
    "accessories": ["Tote Bag", "Belt Bag", "Messenger Bag"],
}
MATERIALS: dict[str, list[str]] = {
    "tops": ["cotton", "linen", "silk", "jersey", "chiffon"],
    "bottoms": ["denim", "cotton twill", "linen", "wool blend"],
    "dresses": ["cotton", "silk", "chiffon", "wax-print cotton"],
    "outerwear": ["wool", "denim", "leather", "cotton canvas"],
    "shoes": ["leather", "suede", "canvas"],
    "accessories": ["leather", "woven raffia", "canvas"],
}
PRICE_NAIRA: dict[str, tuple[int, int]] = {
    "tops": (8_000, 35_000),
    "bottoms": (10_000, 60_000),
    "dresses": (15_000, 90_000),
    "outerwear": (25_000, 150_000),
    "shoes": (15_000, 120_000),
    "accessories": (5_000, 50_000),
}
PATTERN_WORDS = {
    "solid": "",
    "stripes": "Striped",
    "checks": "Checked",
    "dots": "Polka-Dot",
    "florals": "Floral",
}
PATTERN_SENTENCES = {
    "solid": "A clean, solid colour that pairs with anything.",
    "stripes": "Classic stripes for an easy, put-together look.",
    "checks": "A bold check that works from office to weekend.",
    "dots": "Playful polka dots with a timeless feel.",
    "florals": "A hand-drawn floral print in rich tones.",
}
VENDOR_WORDS = ["Boutique", "Atelier", "Closet", "Collective", "Studio", "House", "Wardrobe", "Market"]
VENDOR_NAMES = ["Bukky", "Chidi", "Amaka", "Tunde", "Zainab", "Kemi", "Ifeanyi", "Halima", "Seun", "Ngozi",
                "Yemi", "Efe", "Musa", "Adaeze", "Femi", "Hauwa", "Obinna", "Funke", "Kelechi", "Aisha"]  # fmt: skip
DEMO_VENDOR_PASSWORD = "fashionistar-demo-2026"  # noqa: S105  # published demo credential, dev only


@dataclass
class Leaf:
    node: CategoryNode
    garment: str
    department: str
    noun_key: str


def catalog_leaves(roots: list[CategoryNode]) -> list[Leaf]:
    """The leaf categories that take products (those of a garment kind), each with its department
    and the key of its nouns (``NOUNS``), in tree order."""
    out: list[Leaf] = []

    def walk(node: CategoryNode, department: str, garment: str | None) -> None:
        kind = node.garment or garment
        if not node.children:
            if kind:
                key = (
                    node.slug.removeprefix(f"{department}-").split("-", 1)[-1]
                    if "-" in node.slug
                    else node.slug
                )
                key = next((k for k in NOUNS if node.slug.endswith(k)), key)
                out.append(Leaf(node=node, garment=kind, department=department, noun_key=key))
            return
        for child in node.children:
            walk(child, department, kind)

    for root in roots:
        walk(root, root.slug, None)
    return out


class Rows:
    """Every row of the catalog by table, as COPY takes them; photos and their jobs are added as
    the photos are written."""

    def __init__(self) -> None:
        self.users: list[tuple[Any, ...]] = []
        self.vendors: list[tuple[Any, ...]] = []
        self.brands: list[tuple[Any, ...]] = []
        self.products: list[tuple[Any, ...]] = []
        self.variants: list[tuple[Any, ...]] = []
        self.charts: list[tuple[Any, ...]] = []
        self.images: list[tuple[Any, ...]] = []
        # One embedding job per photo, through the outbox: the sweeper hands them to the worker.
        self.jobs: list[tuple[Any, ...]] = []
        self.pictures: list[tuple[UUID, UUID, str, str, int]] = []
        self.fit_profiles: dict[str, tuple[Any, ...]] = {}

    def fit_profile(self, ranges: dict[str, list[float]], garment: str, now: datetime) -> UUID:
        """The id of the fit profile of a chart row, added the first time it is seen."""
        key = fit_profile_key(ranges, garment)
        if key not in self.fit_profiles:
            vector = json.dumps(fit_row_vector(ranges, garment))
            self.fit_profiles[key] = (uuid_compat.uuid7(), key, garment, json.dumps(ranges), vector, now, now)
        profile_id: UUID = self.fit_profiles[key][0]
        return profile_id


@dataclass(frozen=True)
class _Shop:
    """What every product of one plan draws from: the plan's random draws, its stores and brands."""

    rng: random.Random
    now: datetime
    vendor_ids: list[UUID]
    brand_ids: list[UUID]
    colour_names: list[str]
    pictures_for: int
    currency: str
    seed: int


def plan_catalog(leaves: list[Leaf], *, products: int, seed: int, pictures_for: int, currency: str) -> Rows:
    """Every row of the demo catalog (nothing is written here); the same arguments, the same rows
    (ids and timestamps aside)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    rows = Rows()
    vendor_ids = _plan_vendors(rows, max(5, min(400, products // 60)), now)
    brand_ids = _plan_brands(rows, now)
    shop = _Shop(rng, now, vendor_ids, brand_ids, list(pictures.COLOURS), pictures_for, currency, seed)
    for index in range(products):
        leaf = leaves[index % len(leaves)] if index < len(leaves) else rng.choice(leaves)
        _plan_product(rows, shop, index, leaf)
    return rows


def _plan_vendors(rows: Rows, vendor_count: int, now: datetime) -> list[UUID]:
    """``vendor_count`` active stores, each with its verified owner; their ids in order."""
    password_hash = hash_password_sync(DEMO_VENDOR_PASSWORD)
    vendor_ids = []
    for n in range(vendor_count):
        owner_id, vendor_id = uuid_compat.uuid7(), uuid_compat.uuid7()
        first = VENDOR_NAMES[n % len(VENDOR_NAMES)]
        name = f"{first}'s {VENDOR_WORDS[(n // len(VENDOR_NAMES)) % len(VENDOR_WORDS)]} {n + 1}"
        rows.users.append((owner_id, f"vendor{n + 1:03d}@demo.fashionistar.dev", password_hash, f"{first} Vendor",
                           None, "vendor", True, now, now, now))  # fmt: skip
        rows.vendors.append((vendor_id, owner_id, name, slugify(name), f"{name}: curated Nigerian fashion.",
                             "active", now, now))  # fmt: skip
        vendor_ids.append(vendor_id)
    return vendor_ids


def _plan_brands(rows: Rows, now: datetime) -> list[UUID]:
    brand_ids = []
    for name in BRANDS:
        brand_id = uuid_compat.uuid7()
        rows.brands.append((brand_id, name, slugify(name), now, now))
        brand_ids.append(brand_id)
    return brand_ids


def _plan_product(rows: Rows, shop: _Shop, index: int, leaf: Leaf) -> None:
    """One product in ``leaf``: its row, variants, size chart and photo, drawn in a fixed order."""
    rng, now = shop.rng, shop.now
    product_id = uuid_compat.uuid7()
    vendor_id = shop.vendor_ids[rng.randrange(len(shop.vendor_ids))]
    brand_index = rng.randrange(len(BRANDS))
    pattern = rng.choice(pictures.PATTERNS)
    colour = rng.choice(shop.colour_names)
    material = rng.choice(MATERIALS[leaf.garment])
    noun = rng.choice(NOUNS.get(leaf.noun_key, [leaf.node.name.rstrip("s")]))
    words = [
        PATTERN_WORDS[pattern],
        colour.capitalize(),
        material.title(),
        noun,
    ]
    title = " ".join(w for w in words if w)
    low, high = PRICE_NAIRA[leaf.garment]
    price = rng.randrange(low, high, 500) * 100
    status = "active" if rng.random() < 0.95 else rng.choice(["draft", "archived"])
    description = (
        f"{title} in {material} by {BRANDS[brand_index]}. {PATTERN_SENTENCES[pattern]} "
        f"{'Relaxed fit, true to size.' if rng.random() < 0.5 else 'Tailored fit; size up for room.'}"
    )
    chart = chart_for(leaf.garment, leaf.department)
    size_run = list(chart) if chart else (SHOE_SIZES if leaf.garment == "shoes" else ONE_SIZE)
    start = rng.randrange(0, max(1, len(size_run) - 2))
    sizes = size_run[start : start + rng.randint(3, 6)] if len(size_run) > 1 else size_run
    colours = [colour] + ([rng.choice(shop.colour_names)] if rng.random() < 0.3 else [])
    attributes = {"material": material, "pattern": pattern, "colour": colour}
    picture_id = uuid_compat.uuid7() if index < shop.pictures_for else None
    thumbnail = f"products/{product_id}/{picture_id}/small.webp" if picture_id else None
    rows.products.append((product_id, vendor_id, leaf.node.id, shop.brand_ids[brand_index], title,
                          f"{slugify(title, max_length=200)}-{product_id.hex[-8:]}", description, status,
                          shop.currency, price, json.dumps(attributes), price, False, [], [], False,
                          thumbnail, 0, 0, now, now))  # fmt: skip
    _plan_variants(rows, rng, product_id, index, price, colours, sizes, now)
    if chart:
        _plan_size_chart(rows, product_id, leaf, chart, now)
    if picture_id is not None:
        picture_seed = shop.seed * 1_000_003 + index
        rows.pictures.append((product_id, picture_id, leaf.garment, f"{colour}|{pattern}", picture_seed))


def _plan_variants(
    rows: Rows,
    rng: random.Random,
    product_id: UUID,
    index: int,
    price: int,
    colours: list[str],
    sizes: list[str],
    now: datetime,
) -> None:
    for c_index, variant_colour in enumerate(dict.fromkeys(colours)):
        for size in sizes:
            stock = 0 if rng.random() < 0.15 else rng.randint(1, 30)
            override = round(price * 1.05) if size in ("XXL", "40") and rng.random() < 0.5 else None
            rows.variants.append((uuid_compat.uuid7(), product_id, f"D{index:06d}-{c_index}-{slugify(size).upper()}",
                                  size, variant_colour, override, stock, now, now))  # fmt: skip


def _plan_size_chart(
    rows: Rows, product_id: UUID, leaf: Leaf, chart: dict[str, Ranges], now: datetime
) -> None:
    for position, size in enumerate(chart):
        ranges = {k: [float(v[0]), float(v[1])] for k, v in chart[size].items()}
        profile = rows.fit_profile(ranges, leaf.garment, now)
        rows.charts.append(
            (
                uuid_compat.uuid7(),
                product_id,
                size,
                position,
                json.dumps(ranges),
                profile,
                leaf.node.id,
                now,
                now,
            )
        )
