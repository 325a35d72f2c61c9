// vibetuner's glue for the admin (starlette-admin) pages, loaded in <head>.
// 1. Every unsafe same-origin request carries the page's CSRF token: fetch() and
//    XMLHttpRequest (jQuery) get the X-CSRF-Token header, forms get the csrf_token
//    field as their first part (the server reads it before any upload).
// 2. The "system" colour theme becomes light or dark before the page paints.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute("content") : "";
  var UNSAFE = /^(POST|PUT|PATCH|DELETE)$/i;

  function sameOrigin(url) {
    try {
      return new URL(url, window.location.href).origin === window.location.origin;
    } catch (e) {
      return false;
    }
  }

  var originalFetch = window.fetch;
  if (originalFetch) {
    window.fetch = function (input, init) {
      var options = init || {};
      var isRequest = typeof Request !== "undefined" && input instanceof Request;
      var method = options.method || (isRequest ? input.method : "GET");
      var url = isRequest ? input.url : String(input);
      if (token && UNSAFE.test(method) && sameOrigin(url)) {
        var headers = new Headers(options.headers || (isRequest ? input.headers : undefined));
        headers.set("X-CSRF-Token", token);
        options = Object.assign({}, options, { headers: headers });
      }
      return originalFetch.call(this, input, options);
    };
  }

  var open = XMLHttpRequest.prototype.open;
  var send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) {
    this._vtCsrf = UNSAFE.test(method) && sameOrigin(url);
    return open.apply(this, arguments);
  };
  XMLHttpRequest.prototype.send = function () {
    if (this._vtCsrf && token) this.setRequestHeader("X-CSRF-Token", token);
    return send.apply(this, arguments);
  };

  function addToken(form) {
    if (!token || !UNSAFE.test(form.method || "") || !sameOrigin(form.action)) return;
    var field = form.querySelector('input[name="csrf_token"]');
    if (!field) {
      field = document.createElement("input");
      field.type = "hidden";
      field.name = "csrf_token";
      field.value = token;
    }
    if (form.firstElementChild !== field) form.insertBefore(field, form.firstChild);
  }
  document.addEventListener("submit", function (event) {
    if (event.target instanceof HTMLFormElement) addToken(event.target);
  }, true);
  var submit = HTMLFormElement.prototype.submit;
  HTMLFormElement.prototype.submit = function () {
    addToken(this);
    return submit.apply(this, arguments);
  };

  var root = document.documentElement;
  if (root.getAttribute("data-vt-theme") === "system" && window.matchMedia) {
    var dark = window.matchMedia("(prefers-color-scheme: dark)");
    var apply = function () {
      root.setAttribute("data-bs-theme", dark.matches ? "dark" : "light");
    };
    apply();
    if (dark.addEventListener) dark.addEventListener("change", apply);
  }
})();
