// shikong pages: the language stays chosen. The language switch keeps the page's other
// query parameters; a link made by a script after the page loaded (a map popup) gets the
// page's lang= when followed, like the links the server wrote.
(function () {
  "use strict";
  var lang = (document.documentElement.lang || "en").slice(0, 2).toLowerCase();
  document.querySelectorAll(".sk-lang-switch a[data-lang]").forEach(function (a) {
    var url = new URL(window.location.href);
    url.searchParams.set("lang", a.dataset.lang);
    a.href = url.pathname + url.search + url.hash;
  });
  document.addEventListener("click", function (event) {
    var a = event.target.closest ? event.target.closest("a[href]") : null;
    if (!a || a.closest(".sk-lang-switch")) return;
    var url = new URL(a.href, window.location.href);
    if (url.origin !== window.location.origin || url.searchParams.has("lang")) return;
    url.searchParams.set("lang", lang);
    a.href = url.href;
  }, true);
})();

// Who is signed in, on every page (the frame is rendered without the caller: ask the
// server). Signing out is a POST carrying the CSRF token from the shikong_csrf cookie.
(function () {
  "use strict";
  var slot = document.getElementById("sk-who");
  if (!slot || !window.fetch) return;
  var zh = (document.documentElement.lang || "").slice(0, 2).toLowerCase() === "zh";
  function text(el, value) { el.textContent = value; return el; }
  fetch("/signin/whoami", { credentials: "same-origin", cache: "no-store" })
    .then(function (r) { return r.ok ? r.json() : { signedIn: false }; })
    .then(function (who) {
      slot.textContent = "";
      var label = document.createElement("span");
      label.className = "sk-user me-2";
      if (!who.signedIn) {
        text(label, zh ? "未登录（公众）" : "Not signed in (public)");
        var a = document.createElement("a");
        a.href = "/signin?lang=" + (zh ? "zh" : "en") + "&next=" +
          encodeURIComponent(location.pathname + location.search);
        slot.append(label, text(a, zh ? "登录" : "Sign in"));
        return;
      }
      var dept = who.departmentName || who.department || "";
      text(label, (zh ? "已登录：" : "Signed in: ") + who.user + (dept ? " (" + dept + ")" : ""));
      var form = document.createElement("form");
      form.method = "post"; form.action = "/signout"; form.className = "d-inline";
      var token = document.createElement("input");
      token.type = "hidden"; token.name = "csrf_token";
      var button = document.createElement("button");
      button.type = "submit"; button.className = "btn btn-link btn-sm p-0 align-baseline";
      form.append(token, text(button, zh ? "退出登录" : "Sign out"));
      form.addEventListener("submit", function () {
        var m = document.cookie.match(/(?:^|;\s*)shikong_csrf=([^;]+)/);
        token.value = m ? decodeURIComponent(m[1]) : "";
      });
      slot.append(label, form);
    })
    .catch(function () { /* the page works without it */ });
})();
