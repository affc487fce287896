"""Categories (a tree of any depth) and brands."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy import literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput
from core.page_versions import touch_catalog
from db.models import Brand, Category
from db.pagination import Page, keyset_page
from db.services.catalog.text import slugify


@dataclass
class CategoryNode:
    id: UUID
    name: str
    slug: str
    garment: str | None
    parent_id: UUID | None
    children: list[CategoryNode] = field(default_factory=list)


@dataclass(frozen=True)
class CategoryTree:
    roots: list[CategoryNode]
    by_id: dict[UUID, CategoryNode]
    by_slug: dict[str, CategoryNode]
    # subtree_ids by category, filled as asked (a listing filter on every request; the tree is
    # replaced, not changed, when the categories change).
    _subtrees: dict[UUID, tuple[UUID, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def find(self, key: str | UUID) -> CategoryNode | None:
        if isinstance(key, UUID):
            return self.by_id.get(key)
        try:
            return self.by_id.get(UUID(key))
        except ValueError:
            return self.by_slug.get(key)

    def descendant_ids(self, node: CategoryNode) -> list[UUID]:
        """The node and everything below it."""
        out, stack = [], [node]
        while stack:
            current = stack.pop()
            out.append(current.id)
            stack.extend(current.children)
        return out

    def subtree_ids(self, key: str | UUID) -> list[UUID]:
        """The category named by ``key`` (id or slug) and everything below it, itself first.

        Raises:
            InvalidInput: no such category (422, field ``category``).
        """
        node = self.find(key)
        if node is None:
            raise InvalidInput(
                "Unknown category.", errors=[{"field": "category", "message": "unknown category"}]
            )
        ids = self._subtrees.get(node.id)
        if ids is None:
            ids = self._subtrees[node.id] = tuple(self.descendant_ids(node))
        return list(ids)

    def garment_of(self, category_id: UUID) -> str | None:
        """The garment kind of a category, inherited from the nearest ancestor that has one."""
        node = self.by_id.get(category_id)
        while node is not None:
            if node.garment:
                return node.garment
            node = self.by_id.get(node.parent_id) if node.parent_id else None
        return None


async def load_category_tree(session: AsyncSession) -> CategoryTree:
    rows = (await session.scalars(select(Category).order_by(Category.position, Category.name))).all()
    by_id = {
        row.id: CategoryNode(
            id=row.id, name=row.name, slug=row.slug, garment=row.garment, parent_id=row.parent_id
        )
        for row in rows
    }
    roots: list[CategoryNode] = []
    for node in by_id.values():
        parent = by_id.get(node.parent_id) if node.parent_id else None
        (parent.children if parent else roots).append(node)
    return CategoryTree(roots=roots, by_id=by_id, by_slug={n.slug: n for n in by_id.values()})


async def garment_of_category(session: AsyncSession, category_id: UUID) -> str | None:
    """The garment kind of a category, inherited from the nearest ancestor that has one (one query)."""
    start = select(Category.id, Category.parent_id, Category.garment, literal(0).label("depth"))
    chain = start.where(Category.id == category_id).cte("chain", recursive=True)
    step = select(Category.id, Category.parent_id, Category.garment, (chain.c.depth + 1).label("depth"))
    chain = chain.union_all(
        step.join(chain, Category.id == chain.c.parent_id).where(chain.c.garment.is_(None))
    )
    return await session.scalar(
        select(chain.c.garment).where(chain.c.garment.is_not(None)).order_by(chain.c.depth).limit(1)
    )


async def list_brands(session: AsyncSession, *, limit: int, cursor: str | None) -> Page[Brand]:
    return await keyset_page(session, select(Brand), Brand.id, limit=limit, cursor=cursor)


async def brand_by_key(session: AsyncSession, key: str) -> Brand | None:
    try:
        return await session.get(Brand, UUID(key))
    except ValueError:
        return await session.scalar(select(Brand).where(Brand.slug == slugify(key)))


async def find_or_create_brand(session: AsyncSession, name: str) -> Brand:
    """The brand called ``name`` (matched by slug), created if new; safe under concurrency."""
    clean = " ".join(name.split())
    slug = slugify(clean)
    await session.execute(
        insert(Brand).values(name=clean, slug=slug).on_conflict_do_nothing(index_elements=[Brand.slug])
    )
    brand = await session.scalar(select(Brand).where(Brand.slug == slug))
    assert brand is not None
    touch_catalog()
    return brand
