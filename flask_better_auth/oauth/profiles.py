"""Each provider's profile → user mapping: what its userinfo (or id_token) says, as a
:class:`Profile` with Better Auth's user fields. Pure functions, tested against the responses
the providers' own documentation shows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Profile:
    """What a provider tells about its user, mapped to Better Auth's user fields."""

    id: str
    email: str | None
    email_verified: bool
    name: str
    image: str | None


#: Maps ``(claims, token response)`` to a :class:`Profile`; ``claims`` is the userinfo
#: answer merged over the id_token's claims.
ProfileMapper = Callable[[Mapping[str, Any]], Profile]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def oidc_profile(claims: Mapping[str, Any]) -> Profile:
    """The standard OpenID claims: ``sub``, ``email``, ``email_verified``, ``name``, ``picture``."""
    email = _text(claims.get("email"))
    name = _text(claims.get("name")) or _text(claims.get("preferred_username")) or ""
    return Profile(
        id=str(claims.get("sub") or ""),
        email=email.lower() if email else None,
        email_verified=claims.get("email_verified") is True,
        name=name,
        image=_text(claims.get("picture")),
    )


def github_profile(claims: Mapping[str, Any]) -> Profile:
    """GitHub's ``GET /user`` (``id`` is a number; ``email`` may be null), with the verified
    flag of the address from ``GET /user/emails`` merged in as ``email_verified``."""
    email = _text(claims.get("email"))
    return Profile(
        id=str(claims.get("id") or ""),
        email=email.lower() if email else None,
        email_verified=claims.get("email_verified") is True,
        name=_text(claims.get("name")) or _text(claims.get("login")) or "",
        image=_text(claims.get("avatar_url")),
    )


def discord_profile(claims: Mapping[str, Any]) -> Profile:
    """Discord's ``GET /users/@me`` (``verified``; the avatar is a hash on the CDN)."""
    user_id = str(claims.get("id") or "")
    avatar = _text(claims.get("avatar"))
    email = _text(claims.get("email"))
    return Profile(
        id=user_id,
        email=email.lower() if email else None,
        email_verified=claims.get("verified") is True,
        name=_text(claims.get("global_name")) or _text(claims.get("username")) or "",
        image=f"https://cdn.discordapp.com/avatars/{user_id}/{avatar}.png" if avatar else None,
    )


def gitlab_profile(claims: Mapping[str, Any]) -> Profile:
    """GitLab's ``GET /api/v4/user`` (a ``confirmed_at`` date means a confirmed email)."""
    email = _text(claims.get("email"))
    return Profile(
        id=str(claims.get("id") or ""),
        email=email.lower() if email else None,
        email_verified=bool(claims.get("confirmed_at")),
        name=_text(claims.get("name")) or _text(claims.get("username")) or "",
        image=_text(claims.get("avatar_url")),
    )


def microsoft_profile(claims: Mapping[str, Any]) -> Profile:
    """Microsoft Entra ID's id_token claims: ``email`` is verified when the token says so, or
    when it is one of the ``verified_primary_email``/``verified_secondary_email`` addresses."""
    email = _text(claims.get("email")) or _text(claims.get("preferred_username"))
    verified_lists = [claims.get("verified_primary_email"), claims.get("verified_secondary_email")]
    listed = any(isinstance(v, list) and email in v for v in verified_lists)
    verified = claims["email_verified"] is True if "email_verified" in claims else listed
    return Profile(
        id=str(claims.get("sub") or claims.get("oid") or ""),
        email=email.lower() if email else None,
        email_verified=verified,
        name=_text(claims.get("name")) or "",
        image=_text(claims.get("picture")),
    )


def facebook_profile(claims: Mapping[str, Any]) -> Profile:
    """The Graph API's ``/me?fields=id,name,email,picture`` (Facebook vouches for no email)."""
    picture = claims.get("picture")
    data = picture.get("data") if isinstance(picture, Mapping) else None
    email = _text(claims.get("email"))
    return Profile(
        id=str(claims.get("id") or ""),
        email=email.lower() if email else None,
        email_verified=False,
        name=_text(claims.get("name")) or "",
        image=_text(data.get("url")) if isinstance(data, Mapping) else None,
    )


def spotify_profile(claims: Mapping[str, Any]) -> Profile:
    """Spotify's ``GET /v1/me`` (no verified flag)."""
    images = claims.get("images")
    first = images[0] if isinstance(images, list) and images else None
    email = _text(claims.get("email"))
    return Profile(
        id=str(claims.get("id") or ""),
        email=email.lower() if email else None,
        email_verified=False,
        name=_text(claims.get("display_name")) or "",
        image=_text(first.get("url")) if isinstance(first, Mapping) else None,
    )


def zoom_profile(claims: Mapping[str, Any]) -> Profile:
    """Zoom's ``GET /v2/users/me`` (``verified`` is 1 for a verified address)."""
    email = _text(claims.get("email"))
    name = _text(claims.get("display_name")) or " ".join(
        part for part in (_text(claims.get("first_name")), _text(claims.get("last_name"))) if part
    )
    return Profile(
        id=str(claims.get("id") or ""),
        email=email.lower() if email else None,
        email_verified=claims.get("verified") == 1,
        name=name,
        image=_text(claims.get("pic_url")),
    )


def twitter_profile(claims: Mapping[str, Any]) -> Profile:
    """X's ``GET /2/users/me`` (the user under ``data``; ``confirmed_email`` when granted)."""
    data = claims.get("data")
    if not isinstance(data, Mapping):
        data = claims
    email = _text(data.get("confirmed_email")) or _text(data.get("email"))
    return Profile(
        id=str(data.get("id") or ""),
        email=email.lower() if email else None,
        email_verified=bool(_text(data.get("confirmed_email"))),
        name=_text(data.get("name")) or _text(data.get("username")) or "",
        image=_text(data.get("profile_image_url")),
    )


def apple_profile(claims: Mapping[str, Any]) -> Profile:
    """Sign in with Apple's id_token claims (``email_verified`` may be the string "true"); the
    name comes only once, in the ``user`` form field of the first authorization, so it is
    often empty."""
    email = _text(claims.get("email"))
    verified = claims.get("email_verified")
    name = claims.get("name")
    if isinstance(name, Mapping):
        name = " ".join(p for p in (_text(name.get("firstName")), _text(name.get("lastName"))) if p)
    return Profile(
        id=str(claims.get("sub") or ""),
        email=email.lower() if email else None,
        email_verified=verified is True or verified == "true",
        name=_text(name) or "",
        image=None,
    )


def kakao_profile(claims: Mapping[str, Any]) -> Profile:
    """Kakao's ``GET /v2/user/me`` (the address is verified when valid and verified)."""
    account = claims.get("kakao_account")
    account = account if isinstance(account, Mapping) else {}
    profile = account.get("profile")
    profile = profile if isinstance(profile, Mapping) else {}
    email = _text(account.get("email"))
    return Profile(
        id=str(claims.get("id") or ""),
        email=email.lower() if email else None,
        email_verified=account.get("is_email_valid") is True
        and account.get("is_email_verified") is True,
        name=_text(profile.get("nickname")) or "",
        image=_text(profile.get("profile_image_url")),
    )


def naver_profile(claims: Mapping[str, Any]) -> Profile:
    """Naver's ``GET /v1/nid/me`` (the user under ``response``; no verified flag)."""
    data = claims.get("response")
    if not isinstance(data, Mapping):
        data = claims
    email = _text(data.get("email"))
    return Profile(
        id=str(data.get("id") or ""),
        email=email.lower() if email else None,
        email_verified=False,
        name=_text(data.get("name")) or _text(data.get("nickname")) or "",
        image=_text(data.get("profile_image")),
    )


def dropbox_profile(claims: Mapping[str, Any]) -> Profile:
    """Dropbox's ``POST /2/users/get_current_account``."""
    name = claims.get("name")
    email = _text(claims.get("email"))
    return Profile(
        id=str(claims.get("account_id") or ""),
        email=email.lower() if email else None,
        email_verified=claims.get("email_verified") is True,
        name=(_text(name.get("display_name")) if isinstance(name, Mapping) else None) or "",
        image=_text(claims.get("profile_photo_url")),
    )


def reddit_profile(claims: Mapping[str, Any]) -> Profile:
    """Reddit's ``GET /api/v1/me``. It never tells the address (``has_verified_email`` is about
    one we cannot see), so, as Better Auth, the user gets the placeholder
    ``<id>@reddit.placeholder.invalid`` (RFC 6761), unverified; ``icon_img`` loses its query
    (a signed, expiring resize)."""
    user_id = str(claims.get("id") or "")
    icon = _text(claims.get("icon_img"))
    return Profile(
        id=user_id,
        email=f"{user_id}@reddit.placeholder.invalid".lower() if user_id else None,
        email_verified=False,
        name=_text(claims.get("name")) or "",
        image=icon.split("?")[0] if icon else None,
    )


__all__ = [
    "Profile",
    "ProfileMapper",
    "apple_profile",
    "discord_profile",
    "dropbox_profile",
    "facebook_profile",
    "github_profile",
    "gitlab_profile",
    "kakao_profile",
    "microsoft_profile",
    "naver_profile",
    "oidc_profile",
    "reddit_profile",
    "spotify_profile",
    "twitter_profile",
    "zoom_profile",
]
