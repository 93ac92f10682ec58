// Usage statistics (/workbench/stats): GET /stats with the page's filters, drawn here as
// inline SVG (one small bar chart per figure, a bar per UTC day) and a table per layer
// and department. No chart library: the figures are few and the bars simple.
(function () {
  "use strict";
  var root = document.getElementById("sk-stats");
  if (!root) return;
  var T = JSON.parse(document.getElementById("sk-text").textContent);
  var DEPARTMENTS = JSON.parse(document.getElementById("sk-departments").textContent);
  var lang = root.dataset.lang === "zh" ? "zh" : "en";
  var FIGURES = ["requests", "features", "bytes", "refusals"];
  var SVG = "http://www.w3.org/2000/svg";
  var titles = {};
  var form = document.getElementById("sk-filters");
  var status = document.getElementById("sk-stats-status");

  function get(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) { return { status: r.status, body: j }; });
      });
  }
  function el(tag, props, text) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) { node.setAttribute(k, props[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function number(value) { return Number(value).toLocaleString(lang === "zh" ? "zh-CN" : "en"); }
  function size(bytes) {
    var units = ["B", "KB", "MB", "GB", "TB"], i = 0, v = bytes;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(v < 10 ? 1 : 0) : String(v)) + " " + units[i];
  }
  function shown(figure, value) { return figure === "bytes" ? size(value) : number(value); }
  function department(code) {
    if (code === null || code === undefined) return T.public;
    var d = DEPARTMENTS[code];
    return d ? d[lang] + " (" + code + ")" : code;
  }
  function layer(id) {
    if (id === null || id === undefined) return T.no_layer;
    return titles[id] ? titles[id] + " (" + id + ")" : id;
  }

  function filters() {
    var params = new URLSearchParams(location.search);
    var out = new URLSearchParams();
    ["since", "until", "collection", "department"].forEach(function (k) {
      if (params.get(k)) out.set(k, params.get(k));
    });
    return out;
  }

  // -- the figures -----------------------------------------------------------------------
  function totals(body) {
    var dl = document.getElementById("sk-totals");
    dl.textContent = "";
    FIGURES.forEach(function (f) {
      dl.append(el("dt", {}, T[f]), el("dd", { "data-figure": f, "data-value": body.totals[f] }, shown(f, body.totals[f])));
    });
    document.getElementById("sk-totals-box").hidden = false;
  }

  function perDay(rows) {
    var days = {};
    rows.forEach(function (r) {
      var d = days[r.day] = days[r.day] || { requests: 0, features: 0, bytes: 0, refusals: 0 };
      FIGURES.forEach(function (f) { d[f] += r[f]; });
    });
    // every day from the first to the last, a day without use as zeros (a gap shows)
    var known = Object.keys(days).sort();
    var out = [];
    if (!known.length) return out;
    var day = new Date(known[0] + "T00:00:00Z"), last = new Date(known[known.length - 1] + "T00:00:00Z");
    for (; day <= last && out.length < 1000; day.setUTCDate(day.getUTCDate() + 1)) {
      var key = day.toISOString().slice(0, 10);
      out.push([key, days[key] || { requests: 0, features: 0, bytes: 0, refusals: 0 }]);
    }
    return out;
  }

  // one small bar chart per figure, each with its own scale (bytes and requests differ by
  // 10^4), side by side; a bar per day, its value in the bar's tooltip and data-value
  function chart(rows) {
    var days = perDay(rows);
    var box = document.getElementById("sk-chart");
    box.textContent = "";
    box.setAttribute("aria-label", T.chart);
    var bar = Math.max(4, Math.min(36, Math.floor(400 / Math.max(days.length, 1)) - 3));
    var left = 64, plot = 110, top = 24;
    var width = Math.max(left + days.length * (bar + 3) + 12, 260), height = top + plot + 26;
    var step = Math.ceil(days.length / 8); // at most eight day labels under a panel
    FIGURES.forEach(function (figure) {
      var max = Math.max.apply(null, days.map(function (d) { return d[1][figure]; }).concat([0]));
      var panel = svg("svg", {
        width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img",
        "class": "sk-chart-svg sk-panel-" + figure, "data-figure": figure, "aria-label": T[figure],
      });
      panel.append(svg("title", {}, T[figure]));
      panel.append(svg("text", { x: 0, y: 14, "class": "sk-panel-title" }, T[figure]));
      panel.append(svg("text", { x: left - 6, y: top + 9, "class": "sk-axis", "text-anchor": "end" }, shown(figure, max)));
      panel.append(svg("text", { x: left - 6, y: top + plot, "class": "sk-axis", "text-anchor": "end" }, "0"));
      panel.append(svg("line", { x1: left, x2: width - 6, y1: top + plot + 0.5, y2: top + plot + 0.5, "class": "sk-baseline" }));
      days.forEach(function (d, j) {
        var value = d[1][figure];
        var h = max > 0 ? Math.round((value / max) * plot) : 0;
        if (value > 0 && h < 1) h = 1;
        var x = left + 2 + j * (bar + 3);
        var rect = svg("rect", {
          x: x, y: top + plot - h, width: bar, height: h,
          "class": "sk-bar sk-bar-" + figure, "data-day": d[0], "data-figure": figure, "data-value": value,
        });
        rect.append(svg("title", {}, d[0] + " · " + T[figure] + ": " + shown(figure, value)));
        panel.append(rect);
        if (j % step === 0) {
          panel.append(svg("text", {
            x: x + bar / 2, y: top + plot + 16, "class": "sk-axis", "text-anchor": "middle",
          }, d[0].slice(5)));
        }
      });
      box.append(panel);
    });
    document.getElementById("sk-chart-box").hidden = false;
  }

  function table(rows) {
    var sums = {};
    rows.forEach(function (r) {
      var key = JSON.stringify([r.collection, r.department]);
      var s = sums[key] = sums[key] || { collection: r.collection, department: r.department, requests: 0, features: 0, bytes: 0, refusals: 0 };
      FIGURES.forEach(function (f) { s[f] += r[f]; });
    });
    var list = Object.keys(sums).map(function (k) { return sums[k]; });
    list.sort(function (a, b) { return b.requests - a.requests || String(a.collection).localeCompare(String(b.collection)); });
    var tbody = document.querySelector("#sk-by-layer tbody");
    tbody.textContent = "";
    list.forEach(function (s) {
      var tr = el("tr", { "data-collection": s.collection === null ? "" : s.collection, "data-department": s.department === null ? "" : s.department });
      tr.append(el("td", {}, layer(s.collection)), el("td", {}, department(s.department)));
      FIGURES.forEach(function (f) { tr.append(el("td", { "class": "sk-num", "data-figure": f, "data-value": s[f] }, shown(f, s[f]))); });
      tbody.append(tr);
    });
    document.getElementById("sk-table-box").hidden = false;
  }

  // -- the layer filter: the resource directory's records ------------------------------
  function directory(url, found) {
    return get(url).then(function (answer) {
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
    var select = document.getElementById("sk-collection");
    var wanted = select.dataset.value;
    var own = root.dataset.role === "admin" ? root.dataset.department : null;
    records.forEach(function (f) {
      var p = f.properties || {};
      titles[f.id] = (lang === "en" && p.title_en) || p.title || f.id;
      if (own && p.department !== own) return; // an admin's figures cover its own layers
      select.append(el("option", { value: f.id }, layer(f.id)));
    });
    if (wanted && !titles[wanted]) select.append(el("option", { value: wanted }, wanted));
    select.value = wanted || "";
  }

  function showError(answer) {
    var text = (answer.body && answer.body.description) || String(answer.status);
    var m = /'(since|until)'|\b(since|until)\b/.exec(text);
    var field = m ? (m[1] || m[2]) : "body";
    var slot = form.querySelector('[data-error-for="' + field + '"]') || form.querySelector('[data-error-for="body"]');
    slot.textContent = T.failed + " " + text;
  }

  directory("/directory/collections/directory/items?f=json&skipGeometry=true&limit=100", [])
    .then(fillLayers)
    .then(function () {
      var query = filters().toString();
      return get("/stats" + (query ? "?" + query : ""));
    })
    .then(function (answer) {
      if (answer.status !== 200) { status.textContent = ""; showError(answer); return; }
      var rows = answer.body.rows || [];
      totals(answer.body);
      table(rows);
      if (rows.length) chart(rows);
      status.textContent = rows.length ? "" : T.empty;
    }, function () { status.textContent = T.unreachable; })
    .then(function () { root.dataset.ready = "true"; });
})();
