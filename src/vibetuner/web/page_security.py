"""Template helpers for page security: CSRF tokens and the CSP nonce.

Registered as globals of every template environment; each reads ``request`` from the
template's context:

* ``csrf_token()`` -- the masked token, for scripts that build their own requests;
* ``csrf_field()`` -- ``<input type="hidden" name="csrf_token" ...>``, first in a form;
* ``csrf_meta()`` -- ``<meta name="csrf-token" ...>`` for the ``<head>``;
* ``csp_nonce()`` -- the nonce for ``<script nonce="...">`` and ``<style nonce="...">``;
* ``csrf_script()`` -- a nonce'd script that adds ``X-CSRF-Token`` to the page's own
  unsafe ``fetch()`` calls and HTMX requests, so scripts need no code for it.
"""

from __future__ import annotations

from typing import Any

import jinja2
from markupsafe import Markup

from vibetuner.web import csrf
from vibetuner.web.security_headers import csp_nonce

# Reads the token from the meta tag when it runs, so it works wherever it is placed.
CSRF_SCRIPT = """(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (!meta) return;
  var token = meta.getAttribute("content"), header = "%(header)s";
  var safe = /^(GET|HEAD|OPTIONS|TRACE)$/i;
  var fetch = window.fetch;
  window.fetch = function (input, init) {
    var request = input instanceof Request ? input : null;
    var method = (init && init.method) || (request ? request.method : "GET");
    var url = new URL(request ? request.url : String(input), location.href);
    if (!safe.test(method) && url.origin === location.origin) {
      var headers = new Headers((init && init.headers) || (request ? request.headers : {}));
      if (!headers.has(header)) headers.set(header, token);
      init = Object.assign({}, init, { headers: headers });
    }
    return fetch.call(this, input, init);
  };
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers[header] = token;
  });
})();"""


def _request(context: Any) -> Any:
    request = context.get("request")
    if request is None:
        raise RuntimeError("this template helper needs `request` in the template context")
    return request


@jinja2.pass_context
def _csrf_token(context: Any) -> str:
    return csrf.csrf_token(_request(context))


@jinja2.pass_context
def _csrf_field(context: Any) -> Markup:
    return csrf.csrf_field(_request(context))


@jinja2.pass_context
def _csrf_meta(context: Any) -> Markup:
    return csrf.csrf_meta(_request(context))


@jinja2.pass_context
def _csp_nonce(context: Any) -> str:
    return csp_nonce(_request(context))


@jinja2.pass_context
def _csrf_script(context: Any) -> Markup:
    nonce = csp_nonce(_request(context))
    body = CSRF_SCRIPT % {"header": csrf.HEADER_NAME}
    return Markup('<script nonce="{}">').format(nonce) + Markup(body) + Markup("</script>")


def template_globals() -> dict[str, Any]:
    """The helpers above, by the names templates use."""
    return {
        "csrf_token": _csrf_token,
        "csrf_field": _csrf_field,
        "csrf_meta": _csrf_meta,
        "csp_nonce": _csp_nonce,
        "csrf_script": _csrf_script,
    }
