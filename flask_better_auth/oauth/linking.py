"""Who a provider's user is here: a returning user, a new one, or an existing one the account
is linked to (Better Auth's ``handleOAuthUserInfo`` and link-social rules), and the account
row's token columns."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from ..crypto import generate_id
from ..models import Account, User, utcnow
from ..signals import account_linked
from ..state import app_object, settings, storage
from ..storage import Conflict
from .encryption import decrypt, encrypt, open_sealed, purpose_key
from .profiles import Profile
from .providers import Provider
from .registry import CallbackError, oauth_settings

#: ``derivePurposeKey``'s purpose for the session token sealed in a link's state.
LINK_PURPOSE = "oauth-link-session-token"


def _link_session_live(link: Mapping[str, Any]) -> bool:
    """Better Auth's ``isLinkSessionLive``: the session that started the link still exists,
    is unexpired and belongs to the link's user. A state without a sealed token (written
    before this check existed) passes, as in Better Auth."""
    sealed = link.get("encryptedSessionToken")
    if sealed is None:
        return True
    if not isinstance(sealed, str):
        return False
    keys = tuple(purpose_key(secret, LINK_PURPOSE) for secret in settings().secrets)
    token = open_sealed(keys, sealed)
    if token is None:
        return False
    found = storage().sessions.find(token, authoritative=True)
    if found is None:
        return False
    session = found[0]
    return session.user_id == str(link.get("userId")) and session.expires_at > utcnow()


def stored(token: str) -> str:
    """A token as the account row keeps it: encrypted with ``BETTER_AUTH_ENCRYPT_OAUTH_TOKENS``
    (Better Auth's format), else in clear."""
    return encrypt(settings().secret, token) if oauth_settings().encrypt_tokens else token


def plain(value: str | None) -> str | None:
    """A token read from an account row, decrypted when encryption is on (a row written in
    clear before it was turned on is read as is)."""
    if value is None or not oauth_settings().encrypt_tokens:
        return value
    return decrypt(settings().secrets, value)


def _token_columns(tokens: Mapping[str, Any], provider: Provider) -> dict[str, Any]:
    now = utcnow()
    columns: dict[str, Any] = {}
    for key, column in (
        ("access_token", "access_token"),
        ("refresh_token", "refresh_token"),
        ("id_token", "id_token"),
    ):
        if isinstance(tokens.get(key), str):
            columns[column] = stored(tokens[key])
    for key, column in (
        ("expires_in", "access_token_expires_at"),
        ("refresh_token_expires_in", "refresh_token_expires_at"),
    ):
        seconds = tokens.get(key)
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
            columns[column] = now + timedelta(seconds=float(seconds))
    return columns


def _scope(tokens: Mapping[str, Any], provider: Provider) -> str:
    scope = tokens.get("scope")
    scopes = scope.split() if isinstance(scope, str) and scope else list(provider.scopes)
    return ",".join(scopes)


def new_account(user_id: str, provider: Provider, profile: Profile, tokens: Any) -> Account:
    now = utcnow()
    account = Account(
        id=generate_id(),
        account_id=profile.id,
        provider_id=provider.id,
        user_id=user_id,
        scope=_scope(tokens, provider),
        created_at=now,
        updated_at=now,
    )
    for column, value in _token_columns(tokens, provider).items():
        setattr(account, column, value)
    return account


def update_tokens(account: Account, provider: Provider, tokens: Mapping[str, Any]) -> None:
    for column, value in _token_columns(tokens, provider).items():
        setattr(account, column, value)
    account.updated_at = utcnow()


def _trusted(provider: Provider) -> bool:
    return provider.id in oauth_settings().trusted_providers


def sign_in_or_up(
    provider: Provider, profile: Profile, tokens: Mapping[str, Any], *, request_sign_up: bool
) -> tuple[User, bool, bool] | str:
    """The user to sign in, whether it is new and whether an account was linked to it (the
    caller sends the signals once committed), or an error code (Better Auth's
    ``handleOAuthUserInfo``)."""
    store = storage()
    conf = oauth_settings()
    account = store.accounts.find(provider.id, profile.id)
    if account is not None:
        user = store.users.get(account.user_id)
        if user is None:
            return "user_not_found"
        update_tokens(account, provider, tokens)
        return user, False, False
    email = (profile.email or "").lower()
    user = store.users.by_email(email)
    if user is not None:
        # Implicit linking: the provider is trusted or vouches for the address, and the local
        # user proved it owns the address too (else whoever registered it first would win).
        allowed = (
            conf.linking_enabled
            and (_trusted(provider) or profile.email_verified)
            and (user.email_verified or not conf.require_local_email_verified)
        )
        if not allowed:
            return "account_not_linked"
        store.accounts.add(new_account(user.id, provider, profile, tokens))
        return user, False, True
    if provider.disable_implicit_sign_up and not request_sign_up:
        return "signup_disabled"
    try:
        user = store.users.create(
            profile.name, email, image=profile.image, verified=profile.email_verified
        )
    except Conflict:
        return "unable_to_create_user"
    store.accounts.add(new_account(user.id, provider, profile, tokens))
    return user, True, False


def link_account(
    provider: Provider,
    profile: Profile,
    tokens: Mapping[str, Any],
    link: Mapping[str, Any],
    value: Mapping[str, Any],
) -> str:
    """``/link-social``'s callback: add the account to the user who asked (no new session)."""
    if not _link_session_live(link):
        raise CallbackError("unable_to_link_account")
    conf = oauth_settings()
    store = storage()
    user = store.users.get(str(link.get("userId")))
    if user is None:
        raise CallbackError("unable_to_link_account")
    if not conf.linking_enabled or (not _trusted(provider) and not profile.email_verified):
        raise CallbackError("unable_to_link_account")
    if (profile.email or "").lower() != str(link.get("email", "")).lower() and (
        not conf.allow_different_emails
    ):
        raise CallbackError("email_does_not_match")
    existing = store.accounts.find(provider.id, profile.id)
    if existing is not None and existing.user_id != user.id:
        raise CallbackError("account_already_linked_to_different_user")
    if existing is not None:
        update_tokens(existing, provider, tokens)
    else:
        store.accounts.add(new_account(user.id, provider, profile, tokens))
    store.commit()
    if existing is None:
        account_linked.send(app_object(), user=user, provider_id=provider.id)
    return str(value.get("callbackURL") or "/")


__all__ = [
    "LINK_PURPOSE",
    "link_account",
    "new_account",
    "plain",
    "sign_in_or_up",
    "stored",
    "update_tokens",
]
