"""What the OpenAPI document says about errors and authentication, derived from the routes.

Every error of this API is ``application/problem+json`` (:class:`api.errors.Problem`), but
Litestar documents only success responses and, for routes that take input, a 400 in its own error
shape, which this API never sends (validation is 422 here). :func:`document_problems` gives every
operation in the document:
- 400 (a body that cannot be read) and 422 (validation) where the route takes input;
- 401 and the bearer security requirement where a guard asks for a login; 403 where it asks for a
  role; 404 where the path names an object; 429 where a guard counts calls;
- ``default``: any other error status (409, 413, 415, 503 ...) as problem+json;
all with the Problem schema, so a client (or a fuzzer) can rely on the document for every answer.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import SecurityScheme

from api.errors import PROBLEM_JSON, Problem

BEARER = "BearerToken"
SECURITY_SCHEMES: dict[str, Any] = {
    BEARER: SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description="An access token from POST /api/v1/auth/login or /auth/refresh.",
    )
}
# Handler parameters that are not request input (Litestar's reserved names).
_RESERVED = frozenset({"request", "state", "scope", "headers", "cookies", "query", "socket", "body"})
# Guards, by qualified name (api.auth, and the rate guards of the catalog and measurements): what
# each one can refuse with.
_ROLE_GUARD = "requires_role.<locals>.guard"
_LOGIN_GUARDS = frozenset({"requires_user", _ROLE_GUARD, "within_upload_rate"})
_ROLE_GUARDS = frozenset({_ROLE_GUARD})
_RATE_GUARDS = frozenset({"within_upload_rate", "within_photo_search_rate", "within_account_change_rate"})


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=Problem, media_type=PROBLEM_JSON, description=description, generate_examples=False
    )


def _takes_input(handler: HTTPRouteHandler) -> bool:
    """Whether the handler reads a body, path, query or header parameter (Litestar then documents a
    validation error for it)."""
    dependencies = handler.resolve_dependencies()
    return any(
        name == "data" or (name not in dependencies and name not in _RESERVED)
        for name in handler.parsed_fn_signature.parameters
    )


def _guard_names(handler: HTTPRouteHandler) -> set[str]:
    return {getattr(getattr(guard, "func", guard), "__qualname__", "") for guard in handler.resolve_guards()}


def _responses_for(handler: HTTPRouteHandler, path: str) -> dict[Any, ResponseSpec]:
    responses: dict[Any, ResponseSpec] = {}
    guards = _guard_names(handler)
    if _takes_input(handler):
        responses[400] = _problem("The request body could not be read (malformed JSON or form).")
        responses[422] = _problem("Invalid or missing fields; `errors` names each one.")
    if guards & _LOGIN_GUARDS:
        responses[401] = _problem("No access token, or an invalid or expired one.")
    if guards & _ROLE_GUARDS:
        responses[403] = _problem("The caller's role may not do this.")
    if "{" in path:
        responses[404] = _problem("No such object, or not the caller's (indistinguishable).")
    if guards & _RATE_GUARDS:
        responses[429] = _problem("Too many requests; retry after `Retry-After` seconds.")
    # OpenAPI's "default" response: every other status this operation can answer with.
    responses["default"] = _problem("Any other error (409, 413, 415, 503 with Retry-After, ...).")
    return responses


def document_problems(app: Litestar) -> None:
    """Add the error responses and security requirements of every route handler of ``app`` to the
    OpenAPI document (before it is first built). Responses a handler declares itself win."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler) or not handler.resolve_include_in_schema():
                continue
            handler.responses = {**_responses_for(handler, route.path), **(handler.responses or {})}
            if _guard_names(handler) & _LOGIN_GUARDS and handler.security is None:
                handler.security = [{BEARER: []}]
