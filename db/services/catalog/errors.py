"""Errors of the catalog domain."""

from __future__ import annotations

from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class ProductNotFound(NotFound):
    title = "Product not found"
    code = "product_not_found"


class VariantNotFound(NotFound):
    title = "Variant not found"
    code = "variant_not_found"


class VendorNotFound(NotFound):
    title = "Store not found"
    code = "vendor_not_found"


class CategoryNotFound(InvalidInput):
    code = "unknown_category"

    def __init__(self) -> None:
        super().__init__(
            "There is no such category.", errors=[{"field": "category_id", "message": "unknown category"}]
        )


class StoreAlreadyExists(Conflict):
    title = "Store already exists"
    code = "store_exists"


class StoreNameTaken(Conflict):
    title = "Store name taken"
    code = "store_name_taken"


class StoreRequired(PermissionDenied):
    title = "Store required"
    code = "store_required"


class StoreSuspended(PermissionDenied):
    title = "Store suspended"
    code = "store_suspended"


class SkuTaken(Conflict):
    title = "SKU already used"
    code = "sku_taken"


class VariantExists(Conflict):
    title = "Variant already exists"
    code = "variant_exists"


def field_error(field: str, message: str, detail: str | None = None) -> InvalidInput:
    return InvalidInput(detail or message, errors=[{"field": field, "message": message}])
