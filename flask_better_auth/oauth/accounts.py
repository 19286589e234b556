"""The account routes: ``/list-accounts``, ``/unlink-account``, ``/get-access-token``,
``/refresh-token``, ``/account-info`` (they take the account ROW id, as in Better Auth 1.7)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import request

from ..context import resolve_session
from ..endpoints import Endpoints, require_session
from ..errors import AuthError
from ..models import Account, User, iso, utcnow
from ..schemas import Field, js_type
from ..signals import account_unlinked
from ..state import app_object, storage
from . import client
from .linking import plain, update_tokens
from .providers import Provider, decode_unverified
from .registry import find_provider

routes = Endpoints()

#: get-access-token refreshes a token with less than this left.
REFRESH_MARGIN = timedelta(seconds=5)


def _scopes(account: Account) -> list[str]:
    return [s for s in (account.scope or "").split(",") if s]


@routes.endpoint("/list-accounts", methods=("GET",), auth="session", tags=("oauth",))
def list_accounts(user: User) -> Any:
    """The signed-in user's accounts (credential and providers)."""
    return [
        {
            "accountId": account.account_id,
            "providerId": account.provider_id,
            "userId": account.user_id,
            "createdAt": iso(account.created_at),
            "updatedAt": iso(account.updated_at),
            "id": account.id,
            "scopes": _scopes(account),
        }
        for account in storage().accounts.for_user(user.id)
    ]


def _strict_account_body(body: Any) -> None:
    """get-access-token and refresh-token take ``{accountId}`` (``{providerId}`` is refused
    with Better Auth's ``[body] Invalid input``)."""
    if not isinstance(body, dict):
        raise AuthError(
            400,
            "VALIDATION_ERROR",
            f"[body] Invalid input: expected object, received {js_type(body)}",
        )
    if not isinstance(body.get("accountId"), str):
        raise AuthError(400, "VALIDATION_ERROR", "[body] Invalid input")


def _own_account(body: Any, user: User) -> Account:
    if not isinstance(body, dict) or not isinstance(body.get("accountId"), str):
        received = (
            "undefined"
            if not isinstance(body, dict) or "accountId" not in body
            else (js_type(body["accountId"]))
        )
        raise AuthError(
            400,
            "VALIDATION_ERROR",
            f"[body.accountId] Invalid input: expected string, received {received}",
        )
    account = storage().accounts.get(body["accountId"])
    if account is None or account.user_id != user.id:
        raise AuthError(400, "ACCOUNT_NOT_FOUND")
    return account


@routes.endpoint("/unlink-account", fields=(Field("accountId", required=True),), tags=("oauth",))
def unlink_account(body: Any) -> Any:
    """Remove one of the user's accounts (never the last one)."""
    _, user = require_session("fresh")
    account = _own_account(body, user)
    store = storage()
    if len(store.accounts.for_user(user.id)) <= 1:
        raise AuthError(400, "FAILED_TO_UNLINK_LAST_ACCOUNT")
    provider_id = account.provider_id
    store.accounts.delete(account)
    store.commit()
    account_unlinked.send(app_object(), user=user, provider_id=provider_id)
    return {"status": True}


def _provider_of(account: Account) -> Provider:
    try:
        provider = find_provider(account.provider_id)
    except client.ProviderError:
        provider = None
    if provider is None:
        raise AuthError(400, "PROVIDER_NOT_FOUND")
    return provider


def _refresh(account: Account) -> None:
    provider = _provider_of(account)
    refresh_value = plain(account.refresh_token)
    if not refresh_value:
        raise AuthError(400, "REFRESH_TOKEN_NOT_FOUND")
    try:
        tokens = client.refresh(provider, refresh_value)
    except client.ProviderError:
        raise AuthError(400, "FAILED_TO_REFRESH_ACCESS_TOKEN") from None
    update_tokens(account, provider, tokens)
    storage().commit()


def _optional_iso(value: Any) -> str | None:
    return iso(value) if value is not None else None


def _session_user() -> User | None:
    resolved = resolve_session()
    return resolved[1] if resolved else None


@routes.endpoint("/get-access-token", tags=("oauth",))
def get_access_token(body: Any) -> Any:
    """A valid access token of one of the user's accounts, refreshed when about to expire."""
    _strict_account_body(body)
    user = _session_user()
    if user is None:
        raise AuthError(401, None, body=False)  # Better Auth's empty 401 here
    account = _own_account(body, user)
    expires = account.access_token_expires_at
    if account.refresh_token and (expires is None or expires - utcnow() < REFRESH_MARGIN):
        _refresh(account)
    return {
        "accessToken": plain(account.access_token),
        "accessTokenExpiresAt": _optional_iso(account.access_token_expires_at),
        "scopes": _scopes(account),
        "idToken": plain(account.id_token),
    }


@routes.endpoint("/refresh-token", tags=("oauth",))
def refresh_token(body: Any) -> Any:
    """Refresh an account's tokens now."""
    _strict_account_body(body)
    _, user = require_session("session")
    account = _own_account(body, user)
    _refresh(account)
    return {
        "accessToken": plain(account.access_token),
        "refreshToken": plain(account.refresh_token),
        "accessTokenExpiresAt": _optional_iso(account.access_token_expires_at),
        "refreshTokenExpiresAt": _optional_iso(account.refresh_token_expires_at),
        "scope": account.scope,
        "idToken": plain(account.id_token),
        "providerId": account.provider_id,
        "accountId": account.id,
    }


@routes.endpoint("/account-info", methods=("GET",), auth="session", tags=("oauth",))
def account_info(user: User) -> Any:
    """The provider's view of one of the user's accounts."""
    account = _own_account({"accountId": request.args.get("accountId")}, user)
    provider = _provider_of(account)
    claims: dict[str, Any] = {}
    id_token, access_token = plain(account.id_token), plain(account.access_token)
    if id_token:
        claims = decode_unverified(id_token)
    if not claims.get("email") and access_token:
        try:
            claims = {**claims, **client.userinfo(provider, access_token)}
        except client.ProviderError:
            raise AuthError(400, "FAILED_TO_GET_USER_INFO") from None
    profile = provider.profile(claims)
    return {
        "user": {
            "email": profile.email,
            "emailVerified": profile.email_verified,
            "name": profile.name,
        },
        "data": {"id": profile.id, "emailVerified": profile.email_verified, **claims},
        "account": {
            "id": account.id,
            "providerId": account.provider_id,
            "accountId": account.account_id,
        },
    }


__all__ = ["REFRESH_MARGIN", "routes"]
