"""Which address a request comes from (`request.client`: the login throttles, usage history).

The peer's own address, unless the peer is a reverse proxy named in MYKEY_TRUSTED_PROXIES
(IP addresses or networks; default: none): then the client address it forwards in
`X-Forwarded-For` (the nearest one that is not itself a trusted proxy) and the scheme in
`X-Forwarded-Proto`. Anyone else's forwarding headers are ignored, so a client cannot choose
the address its failures are counted under.

`mykey serve` gives uvicorn the same list (`forwarded_allow_ips`), and the app applies the
same rule itself (uvicorn's own middleware, with the same list), so it holds under any ASGI
server that does not trust more on its own. Applying the rule twice gives the same address:
after the first pass the peer is the forwarded client, which is not a trusted proxy (or, if
every hop is trusted, the first hop again).
"""

from __future__ import annotations

from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from mykey.config import Settings


def install(app: FastAPI, settings: Settings) -> None:
    trusted = settings.trusted_proxy_list()
    if trusted:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted)
