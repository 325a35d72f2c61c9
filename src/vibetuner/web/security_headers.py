"""Security headers on every response, as one ASGI middleware.

* ``Content-Security-Policy`` from ``CONTENT_SECURITY_POLICY``. A page that calls
  ``csp_nonce()`` (``<script nonce="{{ csp_nonce() }}">``) gets a fresh nonce for this
  response added to ``script-src`` and ``style-src``; no ``'unsafe-inline'`` for scripts.
  ``CSP_REPORT_ONLY`` sends it as ``Content-Security-Policy-Report-Only`` instead.
* ``X-Frame-Options: DENY`` while the policy says ``frame-ancestors 'none'``
  (``SAMEORIGIN`` for ``'self'``), ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: strict-origin-when-cross-origin``.
* ``Cache-Control: no-store`` on answers to signed-in users, so shared caches and the
  back button do not keep their pages.
* ``Strict-Transport-Security`` in production (``HSTS_MAX_AGE``, 0 turns it off).

A response that sets one of these headers itself keeps its own value (blob downloads
send a sandbox CSP and a revalidating ``Cache-Control``). A route relaxes the policy
for its own answers with :func:`relax_csp` or :func:`replace_csp`, or as a dependency
with :func:`csp_sources`. ``SECURITY_HEADERS=false`` turns the middleware off.

The ``secure`` package builds header values but applies one fixed set to every
response, replacing what routes set; per-request nonces, per-route policies and
headers that depend on the session are what this middleware adds.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibetuner.config import Settings
from vibetuner.web.identity import SESSION_TOKEN_KEY

SCOPE_NONCE = "vibetuner.csp_nonce"
SCOPE_POLICY = "vibetuner.csp"

Policy = dict[str, list[str]]


def parse_policy(text: str) -> Policy:
    """A CSP header value as ``{directive: [sources]}``, in order."""
    policy: Policy = {}
    for part in text.split(";"):
        words = part.split()
        if words:
            policy.setdefault(words[0].lower(), words[1:])
    return policy


def format_policy(policy: Policy) -> str:
    """``{directive: [sources]}`` as a header value."""
    return "; ".join(" ".join([name, *sources]) for name, sources in policy.items())


def csp_nonce(request: Any) -> str:
    """This response's CSP nonce, for ``<script nonce=...>`` and ``<style nonce=...>``.

    Pages that never ask for one are sent a policy without a nonce.
    """
    scope = request.scope
    nonce: str | None = scope.get(SCOPE_NONCE)
    if nonce is None:
        nonce = scope[SCOPE_NONCE] = secrets.token_urlsafe(18)
    return nonce


def relax_csp(request: Request, **directives: str | Iterable[str]) -> None:
    """Allow more sources for this response: ``relax_csp(request, img_src="https://cdn")``.

    Keyword names are directives with ``_`` for ``-``; a directive the policy does not
    have yet is added.
    """
    changes: dict[str, list[str]] = request.scope.setdefault(SCOPE_POLICY, {})
    if changes is None:
        return  # the route turned the policy off
    for name, sources in directives.items():
        values = [sources] if isinstance(sources, str) else list(sources)
        changes.setdefault(name.replace("_", "-").lower(), []).extend(values)


def replace_csp(request: Request, policy: str | None) -> None:
    """Send ``policy`` instead of the app's for this response (None: no CSP at all)."""
    request.scope[SCOPE_POLICY] = None if policy is None else {"": [policy]}


def csp_sources(**directives: str | Iterable[str]) -> Callable[[Request], None]:
    """A dependency that relaxes the CSP of a route or router, like :func:`relax_csp`.

    ``@router.get("/map", dependencies=[Depends(csp_sources(img_src="https://tiles"))])``
    """

    def relax(request: Request) -> None:
        relax_csp(request, **directives)

    return relax


def signed_in(scope: Scope) -> bool:
    """True when the request's session belongs to a signed-in user (the default test)."""
    session = scope.get("session")
    if not session:
        return False
    return SESSION_TOKEN_KEY in session


class SecurityHeadersMiddleware:
    """Add the security headers described in this module to every HTTP response."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        is_signed_in: Callable[[Scope], bool] = signed_in,
    ) -> None:
        self.app = app
        self.is_signed_in = is_signed_in
        self.policy = parse_policy(settings.content_security_policy)
        self.csp_header = (
            b"content-security-policy-report-only"
            if settings.csp_report_only
            else b"content-security-policy"
        )
        self.static: list[tuple[bytes, bytes]] = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
        ]
        if settings.is_production and settings.hsts_max_age > 0:
            self.static.append(
                (b"strict-transport-security", f"max-age={settings.hsts_max_age}".encode())
            )
        self.plain_policy = format_policy(self.policy).encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._headers(scope, list(message.get("headers", [])))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _headers(self, scope: Scope, headers: list[tuple[bytes, bytes]]) -> list[Any]:
        # ASGI header names are lower case.
        present = {name for name, _ in headers}
        for name, value in self.static:
            if name not in present:
                headers.append((name, value))
        if b"cache-control" not in present and self.is_signed_in(scope):
            headers.append((b"cache-control", b"no-store"))
        has_csp = b"content-security-policy" in present or self.csp_header in present
        policy = self._policy(scope) if not has_csp else None
        if policy:
            headers.append((self.csp_header, policy))
        if b"x-frame-options" not in present:
            frame = self._frame_option(scope, has_csp)
            if frame:
                headers.append((b"x-frame-options", frame))
        return headers

    def _policy(self, scope: Scope) -> bytes | None:
        nonce = scope.get(SCOPE_NONCE)
        changes = scope.get(SCOPE_POLICY, {})
        if changes is None:
            return None
        if not nonce and not changes:
            return self.plain_policy or None  # the common case: nothing to compute
        if "" in changes:
            return changes[""][0].encode("latin-1") or None
        policy = {name: list(sources) for name, sources in self.policy.items()}
        for name, sources in changes.items():
            # A fetch directive the policy lacks starts from default-src, its fallback.
            fallback = policy.get("default-src", []) if name.endswith("-src") else []
            current = policy.setdefault(name, list(fallback))
            if sources and current == ["'none'"]:
                current.clear()  # 'none' cannot stand beside other sources
            current.extend(s for s in sources if s not in current)
        if nonce:
            source = f"'nonce-{nonce}'"
            for name in ("script-src", "style-src"):
                target = name if name in policy else "default-src"
                # A nonce would switch off an 'unsafe-inline' that the policy chose.
                if target in policy and "'unsafe-inline'" not in policy[target]:
                    if source not in policy[target]:
                        policy[target].append(source)
        return format_policy(policy).encode("latin-1") or None

    def _frame_option(self, scope: Scope, has_own_csp: bool) -> bytes | None:
        changes = scope.get(SCOPE_POLICY, {})
        # A route with its own policy, or one that allows framing, decides for itself.
        if has_own_csp or changes is None or "" in changes or "frame-ancestors" in changes:
            return None
        ancestors = self.policy.get("frame-ancestors", [])
        if ancestors == ["'none'"]:
            return b"DENY"
        if ancestors == ["'self'"]:
            return b"SAMEORIGIN"
        return None
