// Access requests between departments (/workbench/requests). Everything goes through
// the API: GET /sharing/requests for the lists, the resource directory for the layers,
// POST /sharing/requests and /sharing/requests/{id}/decision for the writes, with the
// session cookie and the page's CSRF token (read from the shikong_csrf cookie when sent).
// An API answer of 400 names the field ("until: ..."): its message is shown beside it.
(function () {
  "use strict";
  var root = document.getElementById("sk-requests");
  if (!root) return;
  if (root.dataset.signedIn !== "true") { root.dataset.ready = "true"; return; }
  var T = JSON.parse(document.getElementById("sk-text").textContent);
  var DEPARTMENTS = JSON.parse(document.getElementById("sk-departments").textContent);
  var lang = root.dataset.lang === "zh" ? "zh" : "en";
  var me = { department: root.dataset.department, admin: root.dataset.role === "admin" };
  var titles = {}; // layer id → title in the page's language

  function csrf() {
    var m = document.cookie.match(/(?:^|;\s*)shikong_csrf=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  // fetch with the session cookie; resolves {status, body} (body: JSON or {})
  function call(method, url, body) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["X-CSRF-Token"] = csrf();
    }
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      cache: "no-store",
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        return { status: r.status, body: j };
      });
    });
  }

  function el(tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) {
      if (k === "text") node.textContent = props[k];
      else if (k === "class") node.className = props[k];
      else if (k.indexOf("data-") === 0) node.setAttribute(k, props[k]);
      else node[k] = props[k];
    });
    (children || []).forEach(function (c) {
      node.append(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function department(code) {
    var d = DEPARTMENTS[code];
    return d ? d[lang] : code;
  }
  function layer(id) { return titles[id] ? titles[id] + " (" + id + ")" : id; }
  function rights(list) { return (list || []).map(function (r) { return T[r] || r; }).join(lang === "zh" ? "、" : ", "); }

  // -- errors beside the fields ------------------------------------------------------
  function clearErrors(scope) {
    scope.querySelectorAll("[data-error-for]").forEach(function (e) { e.textContent = ""; });
  }
  // "until: end date ... in the past" → shown at the until field (else at "body")
  function showError(scope, answer) {
    var text = (answer.body && answer.body.description) || String(answer.status);
    var m = /^([a-z_-]+): /.exec(text);
    var slot = (m && scope.querySelector('[data-error-for="' + m[1] + '"]')) ||
      scope.querySelector('[data-error-for="body"]');
    slot.textContent = T.failed + " " + text;
    slot.dataset.status = answer.status;
  }

  // -- the state of one request ------------------------------------------------------
  function stateCell(r) {
    return el("td", {}, [el("span", { class: "sk-state sk-state-" + r.state, "data-state": r.state, text: T[r.state] || r.state })]);
  }
  function decisionCell(r) {
    var td = el("td", { class: "sk-decision" });
    if (r.state === "approved" || r.state === "expired") {
      var narrowed = r.granted_until !== r.until ||
        (r.granted_rights || []).length !== (r.rights || []).length;
      td.append(
        el("span", { class: "sk-granted-rights", "data-rights": (r.granted_rights || []).join(","), text: T.granted + ": " + rights(r.granted_rights) }),
        " ",
        el("span", { class: "sk-granted-until", "data-until": r.granted_until || "", text: (r.state === "expired" ? T.ended : T.until) + " " + r.granted_until })
      );
      if (narrowed) td.append(" ", el("span", { class: "sk-narrowed", text: "(" + T.narrowed + ")" }));
    } else if (r.state === "refused") {
      td.append(el("span", { class: "sk-reason", text: T.reason + ": " + (r.reason || "") }));
    } else {
      td.append(el("span", { class: "text-muted", text: T.waiting }));
    }
    if (r.decided_by) td.append(el("div", { class: "small text-muted", text: T.decided_by + " " + r.decided_by + " · " + (r.decided_at || "") }));
    return td;
  }

  function mineRow(r) {
    return el("tr", { "data-request": r.id, "data-collection": r.collection }, [
      el("td", { text: String(r.id) }),
      el("td", { text: layer(r.collection) }),
      el("td", { text: department(r.owner) }),
      el("td", { text: rights(r.rights) }),
      el("td", { text: r.until }),
      el("td", { class: "sk-purpose", text: r.purpose }),
      stateCell(r),
      decisionCell(r),
    ]);
  }

  // -- an admin's decision on one request to its layers ------------------------------
  function decisionForm(r) {
    var form = el("form", { class: "sk-form sk-decide", "data-request": r.id, noValidate: true });
    var boxes = el("fieldset", { class: "sk-field" }, [el("legend", { text: T.rights })]);
    r.rights.forEach(function (right) {
      boxes.append(el("label", { class: "sk-check" }, [
        el("input", { type: "checkbox", name: "rights", value: right, checked: true }), " " + (T[right] || right),
      ]));
    });
    boxes.append(el("span", { class: "sk-field-error", "data-error-for": "rights", role: "alert" }));
    var until = el("input", { type: "date", name: "until", value: r.until, max: r.until });
    var reason = el("input", { type: "text", name: "reason", placeholder: T.reason_hint, maxLength: 2000 });
    form.append(
      boxes,
      el("div", { class: "sk-field" }, [el("label", { text: T.end_date }, [" ", until]),
        el("span", { class: "sk-field-error", "data-error-for": "until", role: "alert" })]),
      el("div", { class: "sk-field" }, [el("label", { text: T.reason }, [" ", reason]),
        el("span", { class: "sk-field-error", "data-error-for": "reason", role: "alert" })]),
      el("button", { type: "submit", class: "btn btn-sm btn-success sk-approve", value: "approve", text: T.approve }),
      " ",
      el("button", { type: "submit", class: "btn btn-sm btn-outline-danger sk-refuse", value: "refuse", text: T.refuse }),
      el("p", { class: "sk-field-error", "data-error-for": "body", role: "alert" }),
      el("p", { class: "sk-field-error", "data-error-for": "decision", role: "alert" })
    );
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(form);
      var choice = event.submitter ? event.submitter.value : "approve";
      var body = { decision: choice };
      if (choice === "approve") {
        body.rights = Array.prototype.map.call(form.querySelectorAll("input[name=rights]:checked"), function (b) { return b.value; });
        if (until.value) body.until = until.value;
      }
      if (reason.value.trim()) body.reason = reason.value.trim();
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      call("POST", "/sharing/requests/" + r.id + "/decision", body).then(function (answer) {
        form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
        if (answer.status === 200) { load(T.decided); return; }
        showError(form, answer);
      }, function () {
        form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
        showError(form, { status: 0, body: { description: T.unreachable } });
      });
    });
    return form;
  }

  function incomingItem(r) {
    var item = el("article", { class: "sk-incoming-item", "data-request": r.id, "data-state": r.state }, [
      el("h3", { text: "#" + r.id + " " + layer(r.collection) }),
      el("p", {}, [T.asked_by + ": " + department(r.department) + (r.user ? " · " + r.user : "") + " — " +
        T.asked + ": " + rights(r.rights) + ", " + T.until + " " + r.until]),
      el("p", { class: "sk-purpose", text: T.purpose + ": " + r.purpose }),
    ]);
    var line = el("p", {}, [stateCell(r).firstChild]);
    item.append(line);
    if (r.state === "requested") item.append(decisionForm(r));
    else item.append(el("div", {}, Array.prototype.slice.call(decisionCell(r).childNodes)));
    return item;
  }

  // -- lists ----------------------------------------------------------------------------
  function load(done) {
    return call("GET", "/sharing/requests").then(function (answer) {
      var status = document.getElementById("sk-mine-status");
      if (answer.status !== 200) { status.textContent = T.failed + " " + (answer.body.description || answer.status); return; }
      var all = answer.body.requests || [];
      var mine = all.filter(function (r) { return r.department === me.department; }).reverse();
      var table = document.getElementById("sk-mine");
      var tbody = table.querySelector("tbody");
      tbody.textContent = "";
      mine.forEach(function (r) { tbody.append(mineRow(r)); });
      table.hidden = mine.length === 0;
      status.textContent = mine.length ? "" : T.none;
      if (me.admin) {
        var incoming = all.filter(function (r) { return r.owner === me.department; });
        incoming.sort(function (a, b) { return (a.state === "requested" ? 0 : 1) - (b.state === "requested" ? 0 : 1) || b.id - a.id; });
        var box = document.getElementById("sk-incoming");
        box.textContent = "";
        incoming.forEach(function (r) { box.append(incomingItem(r)); });
        document.getElementById("sk-incoming-status").textContent = done || (incoming.length ? "" : T.none_incoming);
      }
      root.dataset.loaded = String(Date.now());
    }, function () {
      document.getElementById("sk-mine-status").textContent = T.unreachable;
    });
  }

  // -- the layers one may ask for: the resource directory, page by page ----------------
  function directory(url, found) {
    return call("GET", url).then(function (answer) {
      if (answer.status !== 200) return found;
      (answer.body.features || []).forEach(function (f) { found.push(f); });
      var next = (answer.body.links || []).filter(function (l) { return l.rel === "next"; })[0];
      if (next && (answer.body.features || []).length) {
        var u = new URL(next.href, location.href);
        return directory(u.pathname + u.search, found);
      }
      return found;
    });
  }

  function fillLayers(records) {
    var select = document.getElementById("sk-new-collection");
    select.textContent = "";
    select.append(el("option", { value: "", text: T.pick }));
    var groups = {};
    records.forEach(function (f) {
      var p = f.properties || {};
      titles[f.id] = (lang === "en" && p.title_en) || p.title || f.id;
      if (p.department === me.department) return; // one's own layers need no request
      (groups[p.department] = groups[p.department] || []).push(f);
    });
    Object.keys(groups).sort().forEach(function (code) {
      var group = el("optgroup", { label: department(code) });
      groups[code].sort(function (a, b) { return a.id < b.id ? -1 : 1; }).forEach(function (f) {
        group.append(el("option", { value: f.id, text: layer(f.id) }));
      });
      select.append(group);
    });
  }

  var form = document.getElementById("sk-new");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors(form);
    var done = document.getElementById("sk-new-done");
    done.textContent = "";
    var body = {
      collection: form.elements.collection.value,
      rights: Array.prototype.map.call(form.querySelectorAll("input[name=rights]:checked"), function (b) { return b.value; }),
      purpose: form.elements.purpose.value,
      until: form.elements.until.value,
    };
    var button = document.getElementById("sk-new-submit");
    button.disabled = true;
    call("POST", "/sharing/requests", body).then(function (answer) {
      button.disabled = false;
      if (answer.status === 201) {
        done.textContent = T.sent + " #" + answer.body.id;
        done.dataset.request = answer.body.id;
        form.elements.purpose.value = "";
        load();
        return;
      }
      showError(form, answer);
    }, function () {
      button.disabled = false;
      showError(form, { status: 0, body: { description: T.unreachable } });
    });
  });

  directory("/directory/collections/directory/items?f=json&skipGeometry=true&limit=100", [])
    .then(fillLayers)
    .then(function () { return load(); })
    .then(function () { root.dataset.ready = "true"; });
})();
