// The page's side of the session: forms that change state carry the CSRF token, read
// from the shikong_csrf cookie when they are sent (it is never written into the HTML).
(function () {
  "use strict";
  function csrfToken() {
    var m = document.cookie.match(/(?:^|;\s*)shikong_csrf=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  window.shikongCsrf = csrfToken;
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-csrf-form")) return;
    var field = form.querySelector("input[name=csrf_token]");
    if (field) field.value = csrfToken();
  }, true);
})();
