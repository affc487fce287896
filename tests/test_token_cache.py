"""The per-process cache of verified access tokens never outlives a token's validity."""

from __future__ import annotations

import time
import uuid

import pytest

from core.adapters.tokens import InvalidToken, TokenSigner, VerifiedTokens
from core.settings import Settings


class CountingSigner(TokenSigner):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.verifications = 0

    def decode(self, token: str):  # type: ignore[no-untyped-def]  # same signature as the parent
        self.verifications += 1
        return super().decode(token)


def test_a_token_is_verified_once_while_valid(settings: Settings) -> None:
    signer = CountingSigner(settings)
    tokens = VerifiedTokens(signer)
    token = signer.issue(uuid.uuid4(), "client")
    first = tokens.decode(token)
    assert tokens.decode(token) == first
    assert signer.verifications == 1


def test_expired_and_invalid_tokens_are_refused_even_after_a_hit(settings: Settings) -> None:
    signer = CountingSigner(settings)
    tokens = VerifiedTokens(signer)
    # Past its exp but inside the 10 s leeway when first seen; out of it 1.5 s later. A cached
    # verification must not keep it alive.
    token = signer.issue(uuid.uuid4(), "client", now=int(time.time()) - settings.access_token_ttl_seconds - 9)
    tokens.decode(token)
    time.sleep(1.5)
    with pytest.raises(InvalidToken):
        tokens.decode(token)
    assert token not in tokens._verified
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for _ in range(2):
        with pytest.raises(InvalidToken):
            tokens.decode(forged)
    assert forged not in tokens._verified


def test_the_cache_is_bounded(settings: Settings) -> None:
    signer = TokenSigner(settings)
    tokens = VerifiedTokens(signer, max_entries=50)
    for _ in range(200):
        tokens.decode(signer.issue(uuid.uuid4(), "client"))
    assert len(tokens._verified) <= 50
