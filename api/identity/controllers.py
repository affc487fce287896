"""Identity endpoints: /auth/* (public) and /me (the logged-in user)."""

from __future__ import annotations

from uuid import UUID

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, requires_user
from api.common import user_out
from api.identity import schemas
from api.resources import AppResources
from db.services.identity.accounts import AccountService
from db.services.identity.audit import AuditLog, ClientInfo
from db.services.identity.sessions import SessionService, TokenPair
from db.services.identity.users import UserService

ACCEPTED = schemas.Accepted(
    status="accepted",
    detail="If the address belongs to an account that needs a code, we have emailed one.",
)

# The same answer whether or not the email already has an account.
REGISTERED = schemas.Accepted(
    status="accepted",
    detail="Check your email: we have sent a verification code, or a note if you already have an account.",
)


def provide_accounts(
    db_session: NamedDependency[AsyncSession],
    resources: NamedDependency[AppResources],
    client: NamedDependency[ClientInfo],
) -> AccountService:
    return AccountService(
        db_session, resources.settings, resources.hasher, resources.limiter, client, resources.notices
    )


def provide_sessions(
    db_session: NamedDependency[AsyncSession],
    resources: NamedDependency[AppResources],
    client: NamedDependency[ClientInfo],
) -> SessionService:
    return SessionService(
        db_session,
        resources.settings,
        resources.hasher,
        resources.limiter,
        resources.signer,
        client,
        resources.notices,
    )


def pair_out(pair: TokenPair) -> schemas.TokenPair:
    return schemas.TokenPair(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


class AuthController(Controller):
    path = "/auth"
    tags = ["identity"]
    dependencies = {
        "accounts": Provide(provide_accounts, sync_to_thread=False),
        "sessions": Provide(provide_sessions, sync_to_thread=False),
    }

    @post(
        "/register",
        status_code=202,
        summary="Create an account; emails a verification code (or the owner of an existing one)",
    )
    async def register(
        self, data: JSONBody[schemas.RegisterRequest], accounts: NamedDependency[AccountService]
    ) -> schemas.Accepted:
        await accounts.register(
            email=data.email, password=data.password, full_name=data.full_name, role=data.role
        )
        return REGISTERED

    @post("/otp/verify", status_code=200, summary="Verify the email address with its code")
    async def verify(
        self, data: JSONBody[schemas.VerifyCodeRequest], accounts: NamedDependency[AccountService]
    ) -> schemas.User:
        return user_out(await accounts.verify_email(data.email, data.code))

    @post("/otp/resend", status_code=202, summary="Send a new verification code")
    async def resend(
        self, data: JSONBody[schemas.EmailRequest], accounts: NamedDependency[AccountService]
    ) -> schemas.Accepted:
        await accounts.request_code(data.email, "verify_email")
        return ACCEPTED

    @post("/login", status_code=200, summary="Exchange email and password for tokens")
    async def login(
        self, data: JSONBody[schemas.LoginRequest], sessions: NamedDependency[SessionService]
    ) -> schemas.TokenPair:
        return pair_out(await sessions.login(data.email, data.password))

    @post("/refresh", status_code=200, summary="Rotate a refresh token")
    async def refresh(
        self, data: JSONBody[schemas.RefreshRequest], sessions: NamedDependency[SessionService]
    ) -> schemas.TokenPair:
        return pair_out(await sessions.refresh(data.refresh_token))

    @post("/logout", status_code=204, summary="End the session of a refresh token")
    async def logout(
        self, data: JSONBody[schemas.RefreshRequest], sessions: NamedDependency[SessionService]
    ) -> None:
        await sessions.logout(data.refresh_token)

    @post(
        "/logout/all",
        status_code=204,
        summary="End every session of the refresh token's user",
        description="Every refresh token and every access token of the user stops working at once, "
        "this device's included. A token that is not the live one of a session changes nothing.",
    )
    async def logout_all(
        self, data: JSONBody[schemas.RefreshRequest], sessions: NamedDependency[SessionService]
    ) -> None:
        await sessions.logout_everywhere(data.refresh_token)

    @post("/password/forgot", status_code=202, summary="Email a password reset code")
    async def forgot(
        self, data: JSONBody[schemas.EmailRequest], accounts: NamedDependency[AccountService]
    ) -> schemas.Accepted:
        await accounts.request_code(data.email, "reset_password")
        return ACCEPTED

    @post("/password/reset", status_code=204, summary="Set a new password with a reset code")
    async def reset(
        self, data: JSONBody[schemas.ResetPasswordRequest], accounts: NamedDependency[AccountService]
    ) -> None:
        await accounts.reset_password(data.email, data.code, data.new_password)


class MeController(Controller):
    path = "/me"
    tags = ["identity"]
    guards = [requires_user]
    dependencies = {"sessions": Provide(provide_sessions, sync_to_thread=False)}

    @get("/", summary="The logged-in user")
    async def me(
        self, db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
    ) -> schemas.User:
        return user_out(await UserService(session=db_session).require(principal.user_id))

    @patch("/", summary="Change your name or phone number")
    async def update_me(
        self,
        data: JSONBody[schemas.ProfileUpdate],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        client: NamedDependency[ClientInfo],
    ) -> schemas.User:
        user = await UserService(session=db_session).update_profile(
            principal.user_id,
            AuditLog(db_session, client),
            full_name=None if data.full_name is msgspec.UNSET else data.full_name.strip(),
            phone=data.phone if isinstance(data.phone, str) else None,
            clear_phone=data.phone is None,
        )
        return user_out(user)

    @get("/sessions", summary="Your active sessions (one per login)")
    async def sessions_list(
        self, sessions: NamedDependency[SessionService], principal: NamedDependency[Principal]
    ) -> schemas.SessionList:
        found = await sessions.list_sessions(principal.user_id)
        return schemas.SessionList(
            items=[msgspec.convert(s, schemas.Session, from_attributes=True) for s in found]
        )

    @delete("/sessions/{session_id:uuid}", status_code=204, summary="End one of your sessions")
    async def session_revoke(
        self,
        session_id: FromPath[UUID],
        sessions: NamedDependency[SessionService],
        principal: NamedDependency[Principal],
    ) -> None:
        await sessions.revoke_session(principal.user_id, session_id)


__all__ = ["AuthController", "MeController"]
