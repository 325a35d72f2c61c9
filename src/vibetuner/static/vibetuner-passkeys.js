/* Passkeys (WebAuthn) on vibetuner's sign-in and account pages; no inline code, so it
 * runs under the strict CSP. Requests go through fetch(), which vibetuner.js gives the
 * CSRF header.
 *
 * - [data-passkey-sign-in] (the sign-in page): shown only where the browser has WebAuthn.
 *   On load it asks the browser for a passkey in the autofill list of the email field
 *   (conditional mediation: the field's autocomplete has "webauthn"); its button opens
 *   the browser's own passkey dialog. Either way the answer goes to data-action, and
 *   the page follows the "redirect" of the reply.
 * - form[data-passkey-register] (the account page): its button makes a new passkey and
 *   sends it, with the name typed, to the form's action.
 * Options come from data-options (a POST: each one is a new single-use challenge).
 * Texts it shows come from the page (data attributes) or the server, so they are
 * translated.
 */
(function () {
  "use strict";
  if (window.vibetunerPasskeys) return; // loaded once, even if a page includes it twice
  window.vibetunerPasskeys = true;

  var supported = Boolean(window.PublicKeyCredential && navigator.credentials);

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    base64 += "====".slice((base64.length + 3) % 4 + 1);
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return Object.assign({}, item, { id: toBytes(item.id) });
    });
  }

  // The server's JSON options with their binary fields as bytes, for the browser.
  function creationOptions(json) {
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      user: Object.assign({}, json.user, { id: toBytes(json.user.id) }),
      excludeCredentials: descriptors(json.excludeCredentials),
    });
  }

  function requestOptions(json) {
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      allowCredentials: descriptors(json.allowCredentials),
    });
  }

  // The browser's credential as JSON (written out, not toJSON(): some password managers
  // hand back objects without it).
  function credentialJSON(credential) {
    var response = credential.response;
    var out = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults
        ? credential.getClientExtensionResults()
        : {},
      response: { clientDataJSON: toText(response.clientDataJSON) },
    };
    if (response.attestationObject) {
      out.response.attestationObject = toText(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      out.response.authenticatorData = toText(response.authenticatorData);
      out.response.signature = toText(response.signature);
      if (response.userHandle) out.response.userHandle = toText(response.userHandle);
    }
    return out;
  }

  function postJSON(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return {};
        })
        .then(function (data) {
          return { ok: response.ok, body: data || {} };
        });
    });
  }

  // A refusal from the server, carrying its translated message.
  function refusal(answer) {
    var error = new Error(answer.body.detail || "");
    error.name = "Refused";
    return error;
  }

  function show(box, text) {
    var region = box.querySelector("[data-passkey-error]") ||
      (box.parentElement && box.parentElement.querySelector("[data-passkey-error]"));
    if (!region) return;
    region.textContent = text;
    region.hidden = !text;
  }

  // The browser's own "cancelled" or "timed out": nothing to explain.
  function cancelled(error) {
    return error && (error.name === "NotAllowedError" || error.name === "AbortError");
  }

  function setUpSignIn(box) {
    if (!supported) return;
    box.hidden = false;
    var button = box.querySelector("[data-passkey-button]");
    var autofillRequest = null;
    var pressed = false; // the button's request is under way
    var leaving = false; // signed in: the next page is on its way

    function finish(credential) {
      return postJSON(box.getAttribute("data-action"), {
        credential: credentialJSON(credential),
        next: box.getAttribute("data-next") || "",
      }).then(function (answer) {
        if (!answer.ok) throw refusal(answer);
        leaving = true;
        location.assign(answer.body.redirect || "/");
      });
    }

    function failed(error) {
      if (cancelled(error)) return;
      show(box, (error && error.name === "Refused" && error.message) || box.getAttribute("data-failed"));
    }

    // The passkeys of this site in the email field's autofill list.
    function autofill() {
      var available = PublicKeyCredential.isConditionalMediationAvailable;
      if (typeof available !== "function") return;
      available.call(PublicKeyCredential).then(function (yes) {
        if (!yes) return;
        return postJSON(box.getAttribute("data-options"), {}).then(function (answer) {
          if (!answer.ok) return; // quietly: the button still works
          // One request at a time: the button was pressed meanwhile.
          if (pressed || leaving) return;
          var controller = new AbortController();
          autofillRequest = controller;
          return navigator.credentials
            .get({ mediation: "conditional", publicKey: requestOptions(answer.body), signal: controller.signal })
            .then(function (credential) {
              autofillRequest = null;
              if (credential) return finish(credential);
            })
            .catch(function (error) {
              if (controller.signal.aborted) return; // replaced by the button's request
              if (autofillRequest === controller) autofillRequest = null;
              // Said once, not asked again at once: the button (or a reload) tries again.
              failed(error);
            });
        });
      }).catch(function () {});
    }

    button.addEventListener("click", function () {
      if (autofillRequest) {
        var pending = autofillRequest;
        autofillRequest = null;
        pending.abort();
      }
      show(box, "");
      button.disabled = true;
      pressed = true;
      postJSON(box.getAttribute("data-options"), {})
        .then(function (answer) {
          if (!answer.ok) throw refusal(answer);
          return navigator.credentials.get({ publicKey: requestOptions(answer.body) });
        })
        .then(function (credential) {
          if (credential) return finish(credential);
        })
        .catch(failed)
        .then(function () {
          pressed = false;
          if (leaving) return;
          button.disabled = false;
          if (!autofillRequest) autofill();
        });
    });
    autofill();
  }

  function setUpRegister(form) {
    var button = form.querySelector("[data-passkey-button]");
    if (!supported) {
      show(form, form.getAttribute("data-unsupported"));
      return;
    }
    button.disabled = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      show(form, "");
      button.disabled = true;
      var name = form.querySelector("input[name=name]");
      postJSON(form.getAttribute("data-options"), {})
        .then(function (answer) {
          if (!answer.ok) throw refusal(answer);
          return navigator.credentials.create({ publicKey: creationOptions(answer.body) });
        })
        .then(function (credential) {
          return postJSON(form.getAttribute("action"), {
            credential: credentialJSON(credential),
            name: name ? name.value : "",
          });
        })
        .then(function (answer) {
          if (!answer.ok) throw refusal(answer);
          location.assign(answer.body.redirect || location.pathname);
        })
        .catch(function (error) {
          var text = error && error.name === "Refused" && error.message
            ? error.message
            : cancelled(error)
              ? form.getAttribute("data-cancelled")
              : form.getAttribute("data-failed");
          show(form, text);
          button.disabled = false;
        });
    });
  }

  function setUp(root) {
    root.querySelectorAll("[data-passkey-sign-in]:not([data-armed])").forEach(function (box) {
      box.setAttribute("data-armed", "");
      setUpSignIn(box);
    });
    root.querySelectorAll("form[data-passkey-register]:not([data-armed])").forEach(function (form) {
      form.setAttribute("data-armed", "");
      setUpRegister(form);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      setUp(document);
    });
  } else {
    setUp(document);
  }
  // The account page's section comes back by htmx after a rename or removal.
  document.addEventListener("htmx:after:swap", function () {
    setUp(document);
  });
})();
