"""Where the OAuth modules find the app's providers and settings, and their shared error."""

from __future__ import annotations

from ..state import plugin_settings, settings
from .providers import Provider
from .settings import OAuthSettings


def oauth_settings() -> OAuthSettings:
    """The app's social sign-in settings (read by the core plugin)."""
    conf: OAuthSettings = plugin_settings("core")
    return conf


def find_provider(provider_id: str) -> Provider | None:
    """A configured provider: a built-in one, or one of the ``generic-oauth`` plugin's
    (resolved through its discovery document).

    :raises client.ProviderError: the discovery document cannot be fetched.
    """
    found = oauth_settings().providers.get(provider_id)
    if found is not None:
        return found
    try:
        generic = plugin_settings("generic-oauth")
    except KeyError:
        return None
    resolved: Provider | None = generic.resolve(provider_id)
    return resolved


def provider_ids() -> list[str]:
    """The ids of the app's configured providers (built-in first, then ``generic-oauth``'s):
    for a page's "Sign in with …" buttons."""
    ids = list(oauth_settings().providers)
    try:
        generic = plugin_settings("generic-oauth")
    except KeyError:
        return ids
    return ids + [provider_id for provider_id in generic.providers if provider_id not in ids]


def auth_base() -> str:
    """``<BASE_URL><BASE_PATH>``: where the callback and the error page live."""
    conf = settings()
    return conf.base_url.rstrip("/") + conf.base_path


def redirect_uri(provider: Provider) -> str:
    """The redirect URI sent to the provider (and again with the code): the configured one,
    else ``<BASE_URL><BASE_PATH>/callback/<id>``."""
    return provider.redirect_uri or f"{auth_base()}/callback/{provider.id}"


class CallbackError(Exception):
    """Answered with a 302 to the error URL with ``?error=<code>``."""

    def __init__(self, code: str, url: str | None = None, description: str | None = None):
        super().__init__(code)
        self.code = code
        self.url = url
        self.description = description
