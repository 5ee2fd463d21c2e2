// The hosted login page's passkey ceremony: it asks the browser for a
// passkey (navigator.credentials.get) with the options the page carries,
// puts the response, as JSON, in the passkey form and submits it. The
// server verifies everything; without JavaScript or WebAuthn the page's
// other factors still work.
(function () {
  "use strict";
  var form = document.getElementById("passkey-form");
  if (!form) {
    return;
  }
  var status = document.getElementById("passkey-status");
  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }
  if (!window.PublicKeyCredential || !navigator.credentials) {
    say("This browser cannot use passkeys.");
    form.querySelector("button").disabled = true;
    return;
  }
  function fromB64url(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) {
      s += "=";
    }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }
  function toB64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) {
      bin += String.fromCharCode(bytes[i]);
    }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var opts = JSON.parse(form.querySelector("input[name=options]").value);
    opts.challenge = fromB64url(opts.challenge);
    (opts.allowCredentials || []).forEach(function (c) {
      c.id = fromB64url(c.id);
    });
    say("Waiting for your passkey…");
    navigator.credentials.get({ publicKey: opts }).then(function (cred) {
      var r = cred.response;
      var out = {
        id: cred.id,
        rawId: toB64url(cred.rawId),
        type: cred.type,
        response: {
          clientDataJSON: toB64url(r.clientDataJSON),
          authenticatorData: toB64url(r.authenticatorData),
          signature: toB64url(r.signature)
        },
        clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
      };
      if (r.userHandle) {
        out.response.userHandle = toB64url(r.userHandle);
      }
      form.querySelector("input[name=assertion]").value = JSON.stringify(out);
      form.submit();
    }, function () {
      say("No passkey was used. Try again, or use another way.");
    });
  });
})();
