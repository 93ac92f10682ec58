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
