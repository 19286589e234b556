"""Social sign-in: OAuth 2.0 / OpenID Connect providers, the flow state, account linking.

:mod:`.providers` declares the providers, :mod:`.client` is the back channel (httpx),
:mod:`.flow` holds the routes (``/sign-in/social``, ``/callback/<id>``, ``/link-social``…).
"""
