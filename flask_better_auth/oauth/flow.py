"""The OAuth routes: start (``/sign-in/social``, ``/link-social``), callback, and the account
routes (``/list-accounts``, ``/unlink-account``, ``/get-access-token``, ``/refresh-token``,
``/account-info``), as Better Auth 1.7 answers them (shared/spec/oauth-wire.md).

The flow state is Better Auth's: a verification row ``auth-state:<state>`` holding the JSON
value (callback URLs, PKCE verifier, nonce, link target) and the signed ``state`` cookie, so
the state is single-use and bound to the browser that started the flow.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Response, request

from ..context import create_session
from ..cookies import encode_signed, read_signed_cookie, serialize
from ..crypto import generate_id
from ..endpoints import NO_STORE, Endpoints, json_response, redirect_response, require_session
from ..errors import AuthError
from ..models import Session, User, utcnow
from ..schemas import js_type
from ..signals import account_linked, user_signed_in, user_signed_up
from ..state import app_object, settings, storage
from . import client
from .encryption import encrypt, purpose_key
from .linking import LINK_PURPOSE, link_account, sign_in_or_up
from .profiles import Profile
from .providers import Provider, decode_unverified
from .registry import CallbackError, auth_base, find_provider, redirect_uri

logger = logging.getLogger("flask_better_auth.oauth")

routes = Endpoints()

#: Better Auth's alphabet for state, nonce and PKCE verifier.
STATE_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
STATE_PREFIX = "auth-state:"
#: The state row lives 10 minutes; the cookie 5 (Better Auth's values).
STATE_TTL = timedelta(minutes=10)
STATE_COOKIE_MAX_AGE = 300
#: What a ``form_post`` callback may carry (Better Auth's callback body schema).
CALLBACK_FIELDS = ("code", "error", "error_description", "state", "iss", "device_id", "user")


def code_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _string(body: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        received = "undefined" if name not in body else js_type(value)
        raise AuthError(
            400,
            "VALIDATION_ERROR",
            f"[body.{name}] Invalid input: expected string, received {received}",
        )
    return value


def _check_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise AuthError(
            400,
            "VALIDATION_ERROR",
            f"[body] Invalid input: expected object, received {js_type(body)}",
        )
    for name in ("disableRedirect", "requestSignUp"):
        if name in body and not isinstance(body[name], bool):
            raise AuthError(
                400,
                "VALIDATION_ERROR",
                f"[body.{name}] Invalid input: expected boolean, received {js_type(body[name])}",
            )
    scopes = body.get("scopes")
    if scopes is not None and (
        not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes)
    ):
        raise AuthError(400, "VALIDATION_ERROR", "[body.scopes] Invalid input: expected array")
    extra = body.get("additionalParams")
    if extra is not None and (
        not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values())
    ):
        raise AuthError(
            400, "VALIDATION_ERROR", "[body.additionalParams] Invalid input: expected record"
        )
    for name in ("callbackURL", "newUserCallbackURL", "errorCallbackURL", "loginHint"):
        _string(body, name)
    return body


def _provider_or_404(body: Mapping[str, Any]) -> Provider:
    provider_id = _string(body, "provider", required=True) or ""
    try:
        provider = find_provider(provider_id)
    except client.ProviderError:
        # Better Auth skips a provider whose discovery failed (retrying it on each request
        # naming it): until it answers, that provider does not exist (the failure is logged).
        provider = None
    if provider is None:
        raise AuthError(404, "PROVIDER_NOT_FOUND")
    return provider


def start_flow(
    provider: Provider, body: Mapping[str, Any], link: dict[str, str] | None = None
) -> Response:
    """Store the state, set its cookie and answer ``{url, redirect}`` (Better Auth's
    ``generateState`` + ``createAuthorizationURL``)."""
    state = generate_id(32, STATE_ALPHABET)
    verifier = generate_id(128, STATE_ALPHABET)
    nonce = generate_id(32, STATE_ALPHABET) if provider.oidc else None
    expires = utcnow() + STATE_TTL
    value: dict[str, Any] = {
        "callbackURL": body.get("callbackURL") or settings().base_url,
        "codeVerifier": verifier,
        "errorURL": body.get("errorCallbackURL"),
        "newUserURL": body.get("newUserCallbackURL"),
    }
    if link is not None:
        value["link"] = link
    value["expiresAt"] = int(expires.timestamp() * 1000)
    if body.get("requestSignUp"):
        value["requestSignUp"] = True
    if nonce is not None:
        value["idTokenNonce"] = nonce
    value["oauthState"] = state
    value = {k: v for k, v in value.items() if v is not None}
    store = storage()
    store.verifications.create(STATE_PREFIX + state, json.dumps(value), expires)
    store.commit()

    scopes = list(provider.scopes)
    for scope in body.get("scopes") or ():
        if scope not in scopes:
            scopes.append(scope)
    params: list[tuple[str, str]] = [
        ("response_type", "code"),
        ("client_id", provider.client_id),
        ("state", state),
        ("scope", " ".join(scopes)),
        ("redirect_uri", redirect_uri(provider)),
    ]
    if body.get("loginHint"):
        params.append(("login_hint", body["loginHint"]))
    for name in ("prompt", "access_type", "response_mode"):
        if provider.options.get(name):
            params.append((name, str(provider.options[name])))
    if nonce is not None:
        params.append(("nonce", nonce))
    if provider.pkce:
        params += [("code_challenge_method", "S256"), ("code_challenge", code_challenge(verifier))]
    params += provider.extra_params
    taken = {name for name, _ in params}
    params += [(k, v) for k, v in (body.get("additionalParams") or {}).items() if k not in taken]
    separator = "&" if "?" in provider.authorization_url else "?"
    url = provider.authorization_url + separator + urlencode(params)

    redirect = not body.get("disableRedirect")
    headers = {"Location": url} if redirect else {}
    response = json_response({"url": url, "redirect": redirect}, headers=headers)
    conf = settings()
    response.headers.add(
        "Set-Cookie",
        serialize(
            conf.cookies.name("state"),
            encode_signed(conf.secret, state),
            conf.cookies,
            max_age=STATE_COOKIE_MAX_AGE,
        ),
    )
    return response


@routes.endpoint("/sign-in/social", tags=("oauth",))
def sign_in_social(body: Any) -> Any:
    """Start a social sign-in (or sign in with a provider's id_token)."""
    body = _check_body(body)
    provider = _provider_or_404(body)
    if "idToken" in body:
        return _sign_in_id_token(provider, body)
    return start_flow(provider, body)


@routes.endpoint("/link-social", tags=("oauth",))
def link_social(body: Any) -> Any:
    """Start linking a provider's account to the signed-in user."""
    body = _check_body(body)  # the body is validated before the session, as in Better Auth
    session, user = require_session("session")
    provider = _provider_or_404(body)
    # The session token rides the state sealed, so the callback can refuse a link whose
    # session was revoked (or expired) between the start and the provider's redirect.
    sealed = encrypt(purpose_key(settings().secret, LINK_PURPOSE), session.token)
    link = {"userId": user.id, "email": user.email, "encryptedSessionToken": sealed}
    return start_flow(provider, body, link=link)


def _announce(
    user: User, provider: Provider, session: Session, *, created: bool, linked: bool
) -> None:
    """The signals of a social sign-in, sent once its rows are committed."""
    app = app_object()
    if created:
        user_signed_up.send(app, user=user)
    if linked:
        account_linked.send(app, user=user, provider_id=provider.id)
    user_signed_in.send(app, user=user, session=session)


def _sign_in_id_token(provider: Provider, body: Mapping[str, Any]) -> Any:
    """``idToken`` sign-in (Google One Tap, native apps): no redirect, a session at once."""
    id_token = body.get("idToken")
    if not isinstance(id_token, dict) or not isinstance(id_token.get("token"), str):
        raise AuthError(
            400,
            "VALIDATION_ERROR",
            "[body.idToken.token] Invalid input: expected string, received undefined",
        )
    if not provider.jwks_uri:  # no keys to verify it with (GitHub, plain OAuth providers)
        raise AuthError(404, "ID_TOKEN_NOT_SUPPORTED")
    nonce = id_token.get("nonce") if isinstance(id_token.get("nonce"), str) else None
    try:
        claims = client.verify_id_token(provider, id_token["token"], nonce)
    except (client.InvalidIdToken, client.ProviderError):
        raise AuthError(401, "INVALID_TOKEN") from None
    profile = provider.profile(claims)
    if not profile.id or not profile.email:
        raise AuthError(401, "USER_EMAIL_NOT_FOUND")
    tokens = {
        "id_token": id_token["token"],
        "access_token": id_token.get("accessToken"),
        "refresh_token": id_token.get("refreshToken"),
    }
    outcome = sign_in_or_up(provider, profile, tokens, request_sign_up=False)
    if isinstance(outcome, str):  # account_not_linked, signup_disabled…
        raise AuthError(401, "UNAUTHORIZED", outcome.replace("_", " ").capitalize())
    user, created, linked = outcome
    session = create_session(user)
    storage().commit()
    _announce(user, provider, session, created=created, linked=linked)
    data = {"redirect": False, "token": session.token, "user": user.to_json()}
    return json_response(data, headers=NO_STORE)


def _with_error(url: str, code: str, description: str | None) -> str:
    params = [("error", code)]
    if description:
        params.append(("error_description", description))
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _expire_state_cookie(response: Response) -> None:
    conf = settings()
    response.headers.add(
        "Set-Cookie", serialize(conf.cookies.name("state"), "", conf.cookies, max_age=0)
    )


@routes.endpoint(
    "/callback/<provider_id>",
    methods=("GET", "POST"),
    allow_form=True,
    origin_check=False,  # the provider's page posts here (form_post); it only redirects
    tags=("oauth",),
)
def oauth_callback(provider_id: str, body: Any) -> Any:
    """The provider's redirect back: exchange the code, sign the user in (or link)."""
    if request.method == "POST":
        if not isinstance(body, dict):
            raise AuthError(
                400,
                "VALIDATION_ERROR",
                f"[body] Invalid input: expected object, received {js_type(body)}",
            )
        for name in CALLBACK_FIELDS:
            _string(body, name)
        # form_post: the state cookie (SameSite=Lax) is not sent on a cross-site POST, so
        # Better Auth sends the browser to the GET form of this URL with the same parameters.
        params = dict(request.args)
        if isinstance(body, dict):
            params.update({k: body[k] for k in CALLBACK_FIELDS if isinstance(body.get(k), str)})
        query = urlencode(params)
        return redirect_response(f"{auth_base()}/callback/{provider_id}?{query}")
    default_error = f"{auth_base()}/error"
    state_consumed = False
    try:
        value = _parse_state(default_error)
        state_consumed = True
        error_url = value.get("errorURL") or default_error
        try:
            location = _complete(provider_id, value, error_url)
        except CallbackError as exc:
            exc.url = exc.url or error_url
            raise
        except Exception:
            # The browser is mid-flow: it gets the error page, never a 500 (logged here).
            logger.exception("OAuth callback for %r failed", provider_id)
            storage().rollback()
            raise CallbackError("internal_server_error", error_url) from None
    except CallbackError as exc:
        response = redirect_response(
            _with_error(exc.url or default_error, exc.code, exc.description)
        )
        if state_consumed:
            _expire_state_cookie(response)
        return response
    response = redirect_response(location)
    _expire_state_cookie(response)
    return response


def _parse_state(default_error: str) -> dict[str, Any]:
    """Check the state row and the browser's cookie, then take (consume) the row."""
    state = request.args.get("state")
    if not state:
        raise CallbackError("state_not_found", default_error)
    store = storage()
    row = store.verifications.find(STATE_PREFIX + state)
    value: dict[str, Any] | None = None
    if row is not None:
        try:
            parsed = json.loads(row.value)
        except ValueError:
            parsed = None
        value = parsed if isinstance(parsed, dict) else None
    if value is None:
        raise CallbackError("state_mismatch", default_error)
    error_url = value.get("errorURL") if isinstance(value.get("errorURL"), str) else None
    cookie = read_signed_cookie(request, settings().cookies.name("state"), settings())
    if cookie is None or not hmac.compare_digest(cookie.encode(), state.encode()):
        # Another browser's (or no) cookie: refused, and the row stays for its owner.
        raise CallbackError("state_mismatch", error_url or default_error)
    if store.verifications.consume(STATE_PREFIX + state) is None:
        raise CallbackError("state_mismatch", error_url or default_error)  # raced: spent
    store.commit()
    return value


def _complete(provider_id: str, value: Mapping[str, Any], error_url: str) -> str:
    """The rest of the callback, once the state is ours; the URL to send the browser to."""
    args = request.args
    if args.get("error"):
        raise CallbackError(args["error"], error_url, args.get("error_description"))
    try:
        provider = find_provider(provider_id)
    except client.ProviderError:
        raise CallbackError("oauth_provider_not_found") from None
    if provider is None:
        raise CallbackError("oauth_provider_not_found")
    code = args.get("code")
    if not code:
        raise CallbackError("no_code")
    iss = args.get("iss")
    # RFC 9207: checked against the discovery document's issuer (as Better Auth does; a
    # built-in provider's fixed issuer is for its id_tokens).
    if iss is not None and provider.discovery_url and provider.issuer and iss != provider.issuer:
        raise CallbackError("issuer_mismatch")
    verifier = value.get("codeVerifier") if isinstance(value.get("codeVerifier"), str) else None
    if not provider.pkce:
        verifier = None  # no challenge was sent, so no verifier is (Reddit)
    try:
        tokens = client.exchange_code(provider, code, verifier, redirect_uri(provider))
    except client.ProviderError:
        raise CallbackError("invalid_code") from None
    profile = _profile(provider, tokens, value.get("idTokenNonce"))
    if not profile.email:
        raise CallbackError("email_not_found")
    link = value.get("link")
    if isinstance(link, dict):
        return link_account(provider, profile, tokens, link, value)
    outcome = sign_in_or_up(
        provider, profile, tokens, request_sign_up=value.get("requestSignUp") is True
    )
    if isinstance(outcome, str):
        raise CallbackError(outcome)
    user, created, linked = outcome
    session = create_session(user)
    storage().commit()
    _announce(user, provider, session, created=created, linked=linked)
    callback = str(value.get("callbackURL") or "/")
    if created and isinstance(value.get("newUserURL"), str):
        return str(value["newUserURL"])
    return callback


def _profile(provider: Provider, tokens: Mapping[str, Any], nonce: Any) -> Profile:
    """The user's profile from the id_token (verified for OpenID providers), completed by
    userinfo only when the id_token has no email (Better Auth's order)."""
    claims: dict[str, Any] = {}
    id_token = tokens.get("id_token")
    if isinstance(id_token, str) and provider.oidc:
        try:
            claims = client.verify_id_token(
                provider, id_token, nonce if isinstance(nonce, str) else None
            )
        except client.InvalidIdToken:
            raise CallbackError("invalid_id_token") from None
        except client.ProviderError:
            raise CallbackError("invalid_code") from None
    elif isinstance(id_token, str) and provider.claims_from_id_token:
        claims = decode_unverified(id_token)
    access_token = tokens.get("access_token")
    if not claims.get("email") and isinstance(access_token, str):
        try:
            info = client.userinfo(provider, access_token)
        except client.ProviderError:
            raise CallbackError("unable_to_get_user_info") from None
        if claims.get("sub") and info.get("sub") not in (None, claims["sub"]):
            raise CallbackError("unable_to_get_user_info")  # another user's answer
        claims = {**claims, **info}
        if provider.github_emails and isinstance(access_token, str):
            email, verified = client.github_primary_email(provider, access_token)
            if email and (not claims.get("email") or claims["email"] == email):
                claims["email"], claims["email_verified"] = email, verified
    profile = provider.profile(claims)
    if not profile.id:
        raise CallbackError("unable_to_get_user_info")
    return profile


__all__ = ["routes", "start_flow"]
