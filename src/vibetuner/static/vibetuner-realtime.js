/* vibetuner's realtime script: server-sent events into the page, under the strict CSP
 * (no inline code, no eval).
 *
 * <div data-realtime="{{ realtime_url(user_channel(current_user())) }}"> opens one
 * EventSource to that same-origin address. The browser reconnects by itself after a
 * network drop and sends the last event id, so the server replays what was missed (or
 * sends "realtime-missed" when it was too much).
 *
 * Each event is then
 * - dispatched as a DOM event "realtime:<event name>" on the [data-realtime] element
 *   (it bubbles; detail: {data, id}), so htmx can react to it:
 *   hx-get="..." hx-trigger="realtime:notes-changed from:body";
 * - swapped with htmx into every element inside it with data-realtime-swap="<event name>":
 *   the event's data is the HTML fragment, hx-swap on that element says how (innerHTML
 *   by default), and hx-swap-oob parts of the fragment go where they say.
 * While an element with data-realtime-pause is inside the [data-realtime] element (a
 * form being filled in), events wait, and are delivered once it is gone: a refresh never
 * replaces what someone is typing.
 * A stream whose element leaves the page is closed.
 */
(function () {
  "use strict";
  var sources = new Map();
  var waiting = new Map();
  var MAX_WAITING = 100;

  function deliver(root, name, event) {
    if (root.querySelector("[data-realtime-pause]")) {
      var queue = waiting.get(root) || [];
      if (queue.length < MAX_WAITING) queue.push([name, event]);
      waiting.set(root, queue);
      return;
    }
    var detail = { data: event.data, id: event.lastEventId };
    root.dispatchEvent(new CustomEvent("realtime:" + name, { bubbles: true, detail: detail }));
    if (!window.htmx) return;
    root.querySelectorAll("[data-realtime-swap]").forEach(function (target) {
      var wanted = target.getAttribute("data-realtime-swap").split(/\s+/);
      if (wanted.indexOf(name) === -1) return;
      window.htmx.swap({
        text: event.data,
        target: target,
        sourceElement: target,
        swap: target.getAttribute("hx-swap") || "innerHTML",
      });
    });
  }

  function names(root) {
    // The events this element listens for: those its swap targets name, and every
    // event the server sends for DOM listeners (registered on first sight).
    var found = ["message", "realtime-missed"];
    root.querySelectorAll("[data-realtime-swap]").forEach(function (target) {
      target.getAttribute("data-realtime-swap").split(/\s+/).forEach(function (name) {
        if (name && found.indexOf(name) === -1) found.push(name);
      });
    });
    (root.getAttribute("data-realtime-events") || "").split(/\s+/).forEach(function (name) {
      if (name && found.indexOf(name) === -1) found.push(name);
    });
    return found;
  }

  function connect(root) {
    if (sources.has(root)) return;
    var url = root.getAttribute("data-realtime");
    if (!url) return;
    var source = new EventSource(url);
    sources.set(root, source);
    names(root).forEach(function (name) {
      source.addEventListener(name, function (event) {
        deliver(root, name, event);
      });
    });
    source.addEventListener("open", function () {
      root.setAttribute("data-realtime-state", "open");
      root.dispatchEvent(new CustomEvent("realtime:open", { bubbles: true }));
    });
    source.addEventListener("error", function () {
      // CONNECTING: the browser tries again by itself; CLOSED: refused (signed out).
      var closed = source.readyState === EventSource.CLOSED;
      root.setAttribute("data-realtime-state", closed ? "closed" : "connecting");
      if (closed) root.dispatchEvent(new CustomEvent("realtime:closed", { bubbles: true }));
    });
  }

  function scan() {
    document.querySelectorAll("[data-realtime]").forEach(connect);
    sources.forEach(function (source, root) {
      if (!root.isConnected) {
        source.close();
        sources.delete(root);
        waiting.delete(root);
      }
    });
    waiting.forEach(function (queue, root) {
      if (root.querySelector("[data-realtime-pause]")) return;
      waiting.delete(root);
      queue.forEach(function (item) {
        deliver(root, item[0], item[1]);
      });
    });
  }

  function start() {
    scan();
    new MutationObserver(scan).observe(document.body, { childList: true, subtree: true });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
