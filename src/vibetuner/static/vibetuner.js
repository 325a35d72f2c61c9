/* vibetuner's page script (no inline code, so it runs under the strict CSP).
 *
 * - CSRF: every unsafe same-origin request sent by htmx or fetch() carries the
 *   X-CSRF-Token header from <meta name="csrf-token">.
 * - Upload progress: a form with data-upload-progress="#bar" sends its htmx request
 *   through XMLHttpRequest (fetch() cannot report upload progress) and moves the bar.
 * - Theme: buttons with data-theme-choice switch light / dark / system at once; the
 *   form they sit in saves the choice in a cookie, so the server renders it next time.
 * - Flash messages: close buttons, and success messages fade after a while.
 * - Confirmations: a form or button with data-confirm="..." asks in a <dialog> first.
 * - A <select data-autosubmit> submits its form on change.
 * Texts it shows come from the page (data attributes), so they are translated.
 * - Forms with data-reset-on-success are cleared after a successful htmx request.
 * - File drop zones: [data-dropzone] holds a file input and a [data-drop-target];
 *   files dropped there go to the input, and [data-previews] lists them (with a
 *   thumbnail for images) before they are sent.
 */
(function () {
  "use strict";
  var SAFE = /^(GET|HEAD|OPTIONS|TRACE)$/i;

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : null;
  }

  function sameOrigin(url) {
    try {
      return new URL(url, location.href).origin === location.origin;
    } catch (e) {
      return false;
    }
  }

  // fetch() from the page's own scripts.
  var nativeFetch = window.fetch;
  window.fetch = function (input, init) {
    var request = input instanceof Request ? input : null;
    var method = (init && init.method) || (request ? request.method : "GET");
    var url = request ? request.url : String(input);
    var token = csrfToken();
    if (token && !SAFE.test(method) && sameOrigin(url)) {
      var headers = new Headers((init && init.headers) || (request ? request.headers : {}));
      if (!headers.has("X-CSRF-Token")) headers.set("X-CSRF-Token", token);
      init = Object.assign({}, init, { headers: headers });
    }
    return nativeFetch.call(this, input, init);
  };

  // An XMLHttpRequest with fetch()'s signature, reporting upload progress to `bar`.
  function fetchWithProgress(bar) {
    return function (action, request) {
      return new Promise(function (resolve, reject) {
        var xhr = new XMLHttpRequest();
        xhr.open(request.method || "GET", action);
        Object.keys(request.headers || {}).forEach(function (name) {
          xhr.setRequestHeader(name, request.headers[name]);
        });
        xhr.responseType = "text";
        var fill = bar.querySelector("div") || bar;
        bar.hidden = false;
        bar.setAttribute("aria-valuenow", "0");
        xhr.upload.addEventListener("progress", function (event) {
          if (!event.lengthComputable) return;
          var percent = Math.round((event.loaded / event.total) * 100);
          fill.style.width = percent + "%";
          bar.setAttribute("aria-valuenow", String(percent));
        });
        xhr.addEventListener("load", function () {
          var headers = new Headers();
          xhr.getAllResponseHeaders().trim().split(/[\r\n]+/).forEach(function (line) {
            var at = line.indexOf(":");
            if (at > 0) headers.append(line.slice(0, at).trim(), line.slice(at + 1).trim());
          });
          bar.hidden = true;
          fill.style.width = "0%";
          var status = xhr.status === 0 ? 500 : xhr.status;
          var body = status === 204 || status === 304 ? null : xhr.responseText;
          resolve(new Response(body, { status: status, headers: headers }));
        });
        xhr.addEventListener("error", function () {
          bar.hidden = true;
          reject(new TypeError("The upload failed: the connection was lost."));
        });
        if (request.signal) {
          request.signal.addEventListener("abort", function () {
            xhr.abort();
            reject(new DOMException("Aborted", "AbortError"));
          });
        }
        xhr.send(request.body || null);
      });
    };
  }

  document.addEventListener("htmx:config:request", function (event) {
    var ctx = event.detail && event.detail.ctx;
    if (!ctx) return;
    var token = csrfToken();
    if (token && !SAFE.test(ctx.request.method || "GET") && sameOrigin(ctx.request.action)) {
      ctx.request.headers["X-CSRF-Token"] = token;
    }
    var source = ctx.sourceElement;
    var selector = source && source.closest && source.closest("[data-upload-progress]");
    if (selector) {
      var bar = document.querySelector(selector.getAttribute("data-upload-progress"));
      if (bar) ctx.fetch = fetchWithProgress(bar);
    }
  });

  // Theme: apply at once, then let the form save it.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-theme-choice]");
    if (!button) return;
    var choice = button.getAttribute("data-theme-choice");
    var root = document.documentElement;
    if (choice === "system") root.removeAttribute("data-theme");
    else root.setAttribute("data-theme", choice);
    document.querySelectorAll("[data-theme-choice]").forEach(function (other) {
      other.setAttribute("aria-pressed", String(other === button));
    });
  });

  // Confirmations in a <dialog>; without JavaScript the action simply runs.
  var confirmed = new WeakSet();
  function askFirst(event, element, proceed) {
    if (confirmed.has(element)) {
      confirmed.delete(element);
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
    var dialog = document.getElementById("vt-confirm");
    if (!dialog || typeof dialog.showModal !== "function") {
      if (window.confirm(element.getAttribute("data-confirm"))) {
        confirmed.add(element);
        proceed();
      }
      return;
    }
    dialog.querySelector("[data-confirm-text]").textContent = element.getAttribute("data-confirm");
    var yes = dialog.querySelector("[data-confirm-yes]");
    yes.textContent =
      element.getAttribute("data-confirm-action") || yes.getAttribute("data-default") || "OK";
    dialog.returnValue = "";
    dialog.showModal();
    dialog.addEventListener(
      "close",
      function () {
        if (dialog.returnValue === "yes") {
          confirmed.add(element);
          proceed();
        }
      },
      { once: true }
    );
  }
  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      var submitter = event.submitter;
      var asking = submitter && submitter.hasAttribute("data-confirm") ? submitter : form;
      if (!asking.hasAttribute || !asking.hasAttribute("data-confirm")) return;
      askFirst(event, asking, function () {
        form.requestSubmit(submitter || undefined);
      });
    },
    true
  );

  // Flash messages.
  function armFlashes(root) {
    (root || document).querySelectorAll(".vt-flash:not([data-armed])").forEach(function (flash) {
      flash.setAttribute("data-armed", "");
      if (flash.getAttribute("data-autohide") === "true") {
        setTimeout(function () {
          flash.remove();
        }, 8000);
      }
    });
  }
  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest("[data-flash-close]");
    if (close) close.closest(".vt-flash").remove();
  });
  document.addEventListener("htmx:after:swap", function () {
    armFlashes();
  });
  document.addEventListener("DOMContentLoaded", function () {
    armFlashes();
  });

  document.addEventListener("htmx:after:request", function (event) {
    var ctx = event.detail && event.detail.ctx;
    var source = ctx && ctx.sourceElement;
    var form = source && source.closest && source.closest("form[data-reset-on-success]");
    if (!form || !ctx.response || ctx.response.status >= 400) return;
    form.reset();
    form.querySelectorAll("[data-previews]").forEach(function (list) {
      list.replaceChildren();
    });
    // The errors of an earlier attempt are stale once a save went through.
    form.querySelectorAll(".vt-field-error").forEach(function (error) {
      error.remove();
    });
    form.querySelectorAll("[aria-invalid]").forEach(function (field) {
      field.removeAttribute("aria-invalid");
      field.removeAttribute("aria-describedby");
    });
  });

  // File drop zones and previews.
  // "6 B", "1.2 KB", "3,4 MB": as the server's filesize filter, in the page's language.
  function fileSize(size) {
    var number = new Intl.NumberFormat(document.documentElement.lang || undefined, {
      maximumFractionDigits: 1,
    });
    if (size < 1024) return number.format(size) + " B";
    var units = ["KB", "MB", "GB", "TB"];
    var value = size / 1024;
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return number.format(Math.round(value * 10) / 10) + " " + units[unit];
  }
  function showPreviews(zone, input) {
    var list = zone.querySelector("[data-previews]");
    if (!list) return;
    list.replaceChildren();
    Array.prototype.forEach.call(input.files || [], function (file) {
      var item = document.createElement("li");
      item.className = "vt-badge gap-2 py-1";
      if (/^image\/(png|jpeg|gif|webp)$/.test(file.type)) {
        var img = document.createElement("img");
        img.src = URL.createObjectURL(file);
        img.alt = "";
        img.width = 32;
        img.height = 32;
        img.className = "size-8 rounded object-cover";
        img.addEventListener("load", function () {
          URL.revokeObjectURL(img.src);
        });
        item.append(img);
      }
      var label = document.createElement("span");
      label.textContent = file.name + " (" + fileSize(file.size) + ")";
      item.append(label);
      list.append(item);
    });
  }
  // A <select data-autosubmit> sends its form when changed (the language switch).
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select.matches && select.matches("select[data-autosubmit]") && select.form) {
      select.form.requestSubmit();
    }
  });
  document.addEventListener("change", function (event) {
    var input = event.target;
    var zone = input.closest && input.closest("[data-dropzone]");
    if (zone && input.type === "file") showPreviews(zone, input);
  });
  ["dragenter", "dragover"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      var target = event.target.closest && event.target.closest("[data-drop-target]");
      if (!target) return;
      event.preventDefault();
      target.setAttribute("data-dragging", "");
    });
  });
  document.addEventListener("dragleave", function (event) {
    var target = event.target.closest && event.target.closest("[data-drop-target]");
    if (target && !target.contains(event.relatedTarget)) target.removeAttribute("data-dragging");
  });
  document.addEventListener("drop", function (event) {
    var target = event.target.closest && event.target.closest("[data-drop-target]");
    if (!target) return;
    event.preventDefault();
    target.removeAttribute("data-dragging");
    var zone = target.closest("[data-dropzone]");
    var input = zone && zone.querySelector("input[type=file]");
    if (!input || !event.dataTransfer) return;
    input.files = event.dataTransfer.files;
    showPreviews(zone, input);
  });

  // A request that never got an answer (server down, connection lost) gets a message.
  document.addEventListener("htmx:error", function (event) {
    var error = event.detail && event.detail.error;
    if (error && error.name === "AbortError") return;
    var region = document.getElementById("flashes");
    if (!region) return;
    var flash = document.createElement("div");
    flash.className = "vt-flash vt-flash-error";
    flash.setAttribute("role", "alert");
    var text = document.createElement("p");
    text.className = "vt-flash-text";
    text.textContent =
      region.getAttribute("data-offline-message") ||
      "The server could not be reached. Check your connection and try again.";
    var close = document.createElement("button");
    close.type = "button";
    close.className = "vt-flash-close";
    close.setAttribute("data-flash-close", "");
    close.setAttribute("aria-label", region.getAttribute("data-dismiss-label") || "Dismiss");
    // The same "x" icon as the server-rendered messages (Lucide, ISC).
    var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", "size-4");
    svg.setAttribute("fill", "none");
    svg.setAttribute("stroke", "currentColor");
    svg.setAttribute("stroke-width", "2");
    svg.setAttribute("stroke-linecap", "round");
    svg.setAttribute("aria-hidden", "true");
    ["M18 6 6 18", "m6 6 12 12"].forEach(function (d) {
      var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
      path.setAttribute("d", d);
      svg.append(path);
    });
    close.append(svg);
    flash.append(text, close);
    region.append(flash);
  });
})();
