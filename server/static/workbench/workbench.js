// 一张图 workbench: the caller's layers on one MapLibre map, a time slider, feature
// attributes with Chinese aliases, live sensors (server-sent events) and the proposal
// check. Everything it loads comes from this server, through the same gate as any client;
// writes carry the CSRF token from the shikong_csrf cookie (session.js). Every text it
// writes is the page's (#sk-text, in the page's language, from the server's catalogue).
(function () {
  "use strict";

  var LANG = document.body.getAttribute("data-lang") === "en" ? "en" : "zh";
  var TEXT = (function () {
    var node = document.getElementById("sk-text");
    try { return node ? JSON.parse(node.textContent) : {}; } catch (e) { return {}; }
  })();
  // a text of the page, its {name} marks filled from `values`
  function t(key, values) {
    var text = TEXT[key] === undefined ? key : TEXT[key];
    return text.replace(/\{(\w+)\}/g, function (all, name) {
      return values && values[name] !== undefined ? String(values[name]) : all;
    });
  }
  var GAP = LANG === "en" ? " " : "";  // after a colon
  function verdictText(v) { return TEXT["verdict_" + v] || v; }
  var DEFAULT_ON = ["nrp-planning_zones", "tra-roads", "wat-rivers", "wat-reservoirs"];
  var state = {
    catalog: null, layers: {}, order: [], dates: [], date: null, aliases: { fields: {}, collections: {} },
    markers: {}, readings: {}, alerts: [], proposal: null, drawing: null, reports: {}, ready: false,
  };
  window.shikong = state;
  // MapLibre's worker (its whole bundle, parsed again) starts while the page is built
  if (window.maplibregl && maplibregl.prewarm) maplibregl.prewarm();

  function $(sel, root) { return (root || document).querySelector(sel); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function csrf() { return window.shikongCsrf ? window.shikongCsrf() : ""; }
  var signedIn = !!document.querySelector(".sk-user[data-department]");
  var HIDDEN_NOTE = t(signedIn ? "hidden_signed_in" : "hidden_public");

  function fail(response) {
    return response.json().catch(function () { return {}; }).then(function (body) {
      var msg = body.description || response.statusText;
      if (response.status === 404) msg = HIDDEN_NOTE;
      var err = new Error(msg); err.status = response.status; throw err;
    });
  }
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : fail(r); });
  }
  function postJSON(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json", accept: "application/json", "x-csrf-token": csrf() },
      body: JSON.stringify(body),
    }).then(function (r) { return r.ok ? r.json() : fail(r); });
  }
  function fmt(n, digits) {
    if (n === null || n === undefined || n === "") return "—";
    if (typeof n !== "number") return String(n);
    return n.toLocaleString(LANG === "en" ? "en-US" : "zh-CN", { maximumFractionDigits: digits === undefined ? 2 : digits });
  }

  // -- the map --------------------------------------------------------------------------
  // Made once the layer list is known (it is in the page: #sk-boot), with the layers shown
  // on opening already in its style, so their tiles are asked for while MapLibre starts.
  var map = null;
  var BACKGROUND = { id: "sk-background", type: "background", paint: { "background-color": "#f3f1ec" } };

  function tileUrl(url, timed) {
    var base = url.split("?")[0];
    return timed && state.date ? base + "?datetime=" + state.date + "T12:00:00Z" : base;
  }

  function opacityProps(type) {
    return { fill: ["fill-opacity"], line: ["line-opacity"], circle: ["circle-opacity", "circle-stroke-opacity"], raster: ["raster-opacity"], "fill-extrusion": ["fill-extrusion-opacity"] }[type] || [];
  }

  // A layer's sources and style layers, handed to addSource/addLayer (the map's, or those
  // of the style the map is made with); its bookkeeping kept in state.layers.
  function adopt(id, addSource, addLayer) {
    var L = state.layers[id], style = L.style;
    L.sources = L.sources || [];
    L.tiles = L.tiles || {};
    Object.keys(style.sources).forEach(function (sid) {
      var src = JSON.parse(JSON.stringify(style.sources[sid]));
      if (src.tiles) src.tiles = src.tiles.map(function (t) { return tileUrl(t, L.meta.timed); });
      if (L.sources.indexOf(sid) < 0) L.sources.push(sid);
      L.tiles[sid] = style.sources[sid].tiles || [];
      addSource(sid, src);
    });
    L.ids = style.layers.map(function (layer) { return layer.id; });
    L.base = {};
    style.layers.forEach(function (layer) {
      opacityProps(layer.type).forEach(function (p) {
        var v = layer.paint && layer.paint[p];
        L.base[layer.id + "|" + p] = typeof v === "number" ? v : 1;
      });
      addLayer(layer);
    });
  }

  function enable(id) {
    var L = state.layers[id];
    L.on = true;
    var ready = L.style ? Promise.resolve(L.style) : getJSON(L.meta.style + "?f=json").then(function (s) { L.style = s; return s; });
    return ready.then(function (style) {
      if (!L.on) return;
      adopt(id, function (sid, src) { if (!map.getSource(sid)) map.addSource(sid, src); }, function (layer) {
        if (!map.getLayer(layer.id)) map.addLayer(layer);
        else map.setLayoutProperty(layer.id, "visibility", "visible");
      });
      applyOpacity(id);
      applyOrder();
      showMarkers(id, true);
      L.row.classList.remove("sk-error");
    }).catch(function (err) {
      L.on = false; L.box.checked = false;
      L.row.classList.add("sk-error");
      L.row.title = err.message;
    });
  }

  function showMarkers(layer, on) {
    Object.keys(state.markers).forEach(function (sensor) {
      var m = state.markers[sensor];
      if (m.layer === layer) m.getElement().style.display = on ? "" : "none";
    });
  }

  function disable(id) {
    var L = state.layers[id];
    L.on = false;
    showMarkers(id, false);
    (L.ids || []).forEach(function (lid) { if (map.getLayer(lid)) map.setLayoutProperty(lid, "visibility", "none"); });
  }

  function applyOpacity(id) {
    var L = state.layers[id];
    if (!L.style) return;
    L.style.layers.forEach(function (layer) {
      opacityProps(layer.type).forEach(function (p) {
        if (map.getLayer(layer.id)) map.setPaintProperty(layer.id, p, L.base[layer.id + "|" + p] * L.opacity);
      });
    });
  }

  function applyOrder() {
    // state.order is top first: move each layer to the top from the bottom up
    state.order.slice().reverse().forEach(function (id) {
      (state.layers[id].ids || []).forEach(function (lid) { if (map.getLayer(lid)) map.moveLayer(lid); });
    });
    ["sk-proposal-fill", "sk-proposal-line", "sk-overlap-fill"].forEach(function (lid) { if (map.getLayer(lid)) map.moveLayer(lid); });
  }

  function setDate(date) {
    state.date = date;
    $("#sk-time-label").textContent = date ? t("time_from", { date: date }) : t("time_current");
    Object.keys(state.layers).forEach(function (id) {
      var L = state.layers[id];
      if (!L.meta.timed || !L.sources) return;
      L.sources.forEach(function (sid) {
        var source = map.getSource(sid);
        if (source && source.setTiles) source.setTiles(L.tiles[sid].map(function (t) { return tileUrl(t, true); }));
      });
    });
  }

  // -- the layer panel ------------------------------------------------------------------
  function layerRow(meta) {
    var box = el("input", { type: "checkbox", "data-layer": meta.id, id: "sk-l-" + meta.id });
    var opacity = el("input", { type: "range", min: "0", max: "100", value: "100", "data-opacity": meta.id, title: t("opacity") });
    var up = el("button", { type: "button", "data-up": meta.id, title: t("up"), text: "↑" });
    var down = el("button", { type: "button", "data-down": meta.id, title: t("down"), text: "↓" });
    var label = el("label", { for: "sk-l-" + meta.id, text: meta.title });
    var row = el("li", { class: "sk-layer sk-kind-" + meta.kind, "data-id": meta.id }, [box, label, opacity, up, down]);
    var L = { meta: meta, on: false, opacity: 1, row: row, box: box };
    state.layers[meta.id] = L;
    state.order.push(meta.id);
    box.addEventListener("change", function () { if (box.checked) enable(meta.id); else disable(meta.id); });
    opacity.addEventListener("input", function () { L.opacity = opacity.value / 100; applyOpacity(meta.id); });
    up.addEventListener("click", function () { move(meta.id, -1); });
    down.addEventListener("click", function () { move(meta.id, 1); });
    return row;
  }

  function move(id, step) {
    var i = state.order.indexOf(id), j = i + step;
    if (j < 0 || j >= state.order.length) return;
    state.order.splice(i, 1); state.order.splice(j, 0, id);
    var row = state.layers[id].row, other = state.layers[state.order[step < 0 ? j + 1 : j - 1]].row;
    if (row.parentNode === other.parentNode) {
      if (step < 0) row.parentNode.insertBefore(row, other); else row.parentNode.insertBefore(other, row);
    }
    applyOrder();
  }

  function buildPanel(catalog) {
    var panel = $("#sk-layers");
    panel.textContent = "";
    if (!signedIn) panel.appendChild(el("p", { class: "sk-note", id: "sk-anonymous-note", text: t("anonymous_layers") }));
    catalog.departments.forEach(function (dept) {
      var list = el("ul", { class: "sk-layer-list" });
      dept.layers.forEach(function (meta) { list.appendChild(layerRow(meta)); });
      panel.appendChild(el("details", { open: "", class: "sk-department", "data-department": dept.code }, [
        el("summary", { text: t("department_count", { name: dept.name, count: dept.layers.length }) }), list,
      ]));
    });
    var dates = catalog.dates;
    state.dates = dates;
    var slider = $("#sk-time");
    slider.max = String(dates.length);
    slider.value = String(dates.length);
    slider.addEventListener("input", function () {
      var i = Number(slider.value);
      setDate(i >= dates.length ? null : dates[i]);
    });
    var ticks = $("#sk-time-ticks");
    dates.forEach(function (d) { ticks.appendChild(el("option", { value: d, text: d })); });
  }

  function extentOf(catalog) {
    var b = null;
    catalog.departments.forEach(function (d) {
      d.layers.forEach(function (l) {
        if (!l.bbox || l.kind === "raster") return;
        b = b ? [Math.min(b[0], l.bbox[0]), Math.min(b[1], l.bbox[1]), Math.max(b[2], l.bbox[2]), Math.max(b[3], l.bbox[3])] : l.bbox.slice(0, 4);
      });
    });
    return b ? [[b[0], b[1]], [b[2], b[3]]] : null;
  }

  // The style the map is made with: the background and every layer of `on` whose style
  // came with the page, bottom first (state.order is top first).
  function openingStyle(on) {
    var style = { version: 8, sources: {}, layers: [BACKGROUND] };
    state.order.slice().reverse().forEach(function (id) {
      var L = state.layers[id];
      if (on.indexOf(id) < 0 || !L.meta.map) return;
      L.style = L.meta.map;
      L.on = true;
      L.box.checked = true;
      adopt(id, function (sid, src) { style.sources[sid] = src; }, function (layer) { style.layers.push(layer); });
    });
    return style;
  }

  // -- clicking a feature -----------------------------------------------------------------
  function ownerOf(mapLayerId) {
    for (var id in state.layers) if ((state.layers[id].ids || []).indexOf(mapLayerId) >= 0) return id;
    return null;
  }
  function alias(collection, field) {
    var own = (state.aliases.collections[collection] || {})[field];
    return own || state.aliases.fields[field] || null;
  }
  var aliasesRead = null;
  function loadAliases() {
    // not needed for the first frame: read after it, or at the first click
    if (!aliasesRead) aliasesRead = getJSON("/workbench/aliases").then(function (a) { state.aliases = a; }).catch(function () { aliasesRead = null; });
    return aliasesRead;
  }
  function attributeTable(collection, props) {
    var table = el("table", { class: "sk-attributes" });
    Object.keys(props).forEach(function (k) {
      if (k === "bbox") return;
      var a = alias(collection, k);
      var value = props[k];
      var text = value === null || value === undefined ? "—" : (typeof value === "boolean" ? (value ? t("yes") : t("no")) : fmt(value, 6));
      if (a && a.unit && value !== null && value !== undefined) text += " " + (TEXT["unit_" + a.unit] || a.unit);
      // the aliases are Chinese (data): the English page shows the field's own name
      var label = a && LANG === "zh" ? a.alias : k;
      var hint = a ? (LANG === "zh" ? k : a.alias) : k;
      table.appendChild(el("tr", { "data-field": k }, [el("th", { text: label, title: hint }), el("td", { text: text })]));
    });
    return table;
  }
  function showFeatures(features) {
    // one feature per layer under the click, top layer first
    var info = $("#sk-info");
    info.textContent = "";
    var shown = {};
    features.forEach(function (feature) {
      var cid = ownerOf(feature.layer.id);
      if (shown[cid] || Object.keys(shown).length >= 4) return;
      shown[cid] = true;
      var L = state.layers[cid];
      var section = el("section", { class: "sk-feature", "data-collection": cid }, [el("h3", { text: L ? L.meta.title : cid })]);
      section.appendChild(attributeTable(cid, feature.properties));
      info.appendChild(section);
      var fid = feature.properties.fid !== undefined ? feature.properties.fid : feature.id;
      if (cid === "rer-parcels" && fid !== undefined) section.appendChild(parcelRecord(cid, fid));
    });
    $("#sk-side").classList.add("sk-has-info");
  }
  function parcelRecord(cid, fid) {
    var box = el("div", { class: "sk-record", id: "sk-parcel-record" }, [el("p", { text: t("record_loading") })]);
    getJSON("/collections/rer-parcels/items/" + encodeURIComponent(fid) + "?f=json").then(function (item) {
      box.textContent = "";
      box.appendChild(el("h4", { text: t("record") }));
      box.appendChild(attributeTable(cid, item.properties));
    }).catch(function (err) { box.textContent = t("record_failed", { message: err.message }); });
    return box;
  }
  function onClick(e) {
    if (state.drawing) return;
    var features = map.queryRenderedFeatures(e.point).filter(function (f) { return ownerOf(f.layer.id); });
    if (features.length) loadAliases().then(function () { showFeatures(features); });
  }

  // -- live sensors -------------------------------------------------------------------------
  function showReading(r) {
    state.readings[r.sensor + "|" + r.parameter] = r;
    if (r.lon === null || r.lon === undefined) return;
    var marker = state.markers[r.sensor];
    var text = fmt(r.value, 3) + (r.unit ? " " + r.unit : "");
    if (!marker) {
      var node = el("div", { class: "sk-live-marker", "data-sensor": r.sensor, title: (r.name || r.sensor) });
      marker = new maplibregl.Marker({ element: node, anchor: "bottom" }).setLngLat([r.lon, r.lat]).addTo(map);
      marker.layer = r.layer;
      state.markers[r.sensor] = marker;
    }
    var L = state.layers[r.layer];
    marker.getElement().style.display = L && L.on ? "" : "none";
    var node2 = marker.getElement();
    node2.textContent = text;
    node2.setAttribute("data-parameter", r.parameter);
    node2.setAttribute("data-time", r.time);
    node2.classList.toggle("sk-warn", typeof r.warning === "number" && typeof r.value === "number" && r.value >= r.warning);
  }
  function showAlert(a) {
    state.alerts.push(a);
    var list = $("#sk-alerts");
    var text = (a.time || "") + " " + (a.sensor || a.sensor_id || "") + " " + (a.message || a.rule || a.level || t("alert"));
    list.insertBefore(el("li", { class: "sk-alert", text: text }), list.firstChild);
    $("#sk-alerts-box").classList.add("sk-flash");
  }
  function connectLive() {
    if (!window.EventSource) return;
    var source = new EventSource("/workbench/events");
    source.addEventListener("readings", function (e) { JSON.parse(e.data).forEach(showReading); });
    source.addEventListener("alert", function (e) { showAlert(JSON.parse(e.data)); });
    state.events = source;
  }

  // -- the proposal tool ----------------------------------------------------------------------
  function proposalSource() {
    if (!map.getSource("sk-proposal")) {
      map.addSource("sk-proposal", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
      map.addLayer({ id: "sk-proposal-fill", type: "fill", source: "sk-proposal", paint: { "fill-color": "#d6336c", "fill-opacity": 0.15 } });
      map.addLayer({ id: "sk-proposal-line", type: "line", source: "sk-proposal", paint: { "line-color": "#d6336c", "line-width": 2 } });
    }
    return map.getSource("sk-proposal");
  }
  function drawOutline(feature) {
    proposalSource().setData({ type: "FeatureCollection", features: feature ? [feature] : [] });
  }
  function setProposal(value, outline, label) {
    state.proposal = value;
    drawOutline(outline);
    $("#sk-proposal-status").textContent = label;
    $("#sk-run").disabled = !value;
    if (outline) {
      var b = new maplibregl.LngLatBounds();
      var walk = function (c) { if (typeof c[0] === "number") b.extend(c); else c.forEach(walk); };
      walk(outline.geometry.coordinates);
      if (!b.isEmpty()) map.fitBounds(b, { padding: 60, duration: 0, maxZoom: 16 });
    }
  }
  function startDrawing() {
    state.drawing = [];
    map.doubleClickZoom.disable();
    map.getCanvas().style.cursor = "crosshair";
    $("#sk-proposal-status").textContent = t("draw_hint");
  }
  function finishDrawing() {
    var pts = state.drawing;
    state.drawing = null;
    map.doubleClickZoom.enable();
    map.getCanvas().style.cursor = "";
    if (!pts || pts.length < 3) { setProposal(null, null, t("draw_too_few")); return; }
    var ring = pts.concat([pts[0]]);
    var geometry = { type: "Polygon", coordinates: [ring] };
    setProposal(geometry, { type: "Feature", properties: {}, geometry: geometry }, t("drawn", { count: pts.length }));
  }
  function onDrawClick(e) {
    if (!state.drawing) return;
    state.drawing.push([e.lngLat.lng, e.lngLat.lat]);
    var pts = state.drawing;
    var geometry = pts.length >= 3 ? { type: "Polygon", coordinates: [pts.concat([pts[0]])] } : { type: "LineString", coordinates: pts.length > 1 ? pts : [pts[0], pts[0]] };
    drawOutline({ type: "Feature", properties: {}, geometry: geometry });
  }

  function upload(file) {
    $("#sk-proposal-status").textContent = t("reading_file", { name: file.name });
    return fetch("/workbench/proposal", {
      method: "POST", credentials: "same-origin", body: file,
      headers: { "content-type": "application/octet-stream", "x-file-name": encodeURIComponent(file.name), "x-csrf-token": csrf() },
    }).then(function (r) { return r.ok ? r.json() : fail(r); }).then(function (answer) {
      setProposal(answer.proposal, answer.outline, t("read_file", { name: answer.name }));
    }).catch(function (err) { setProposal(null, null, t("read_failed", { message: err.message })); });
  }

  function areaCells(a) {
    return [el("td", { class: "sk-m2", text: fmt(a.m2, 2) }), el("td", { class: "sk-ha", text: fmt(a.ha, 4) }), el("td", { class: "sk-mu", text: fmt(a.mu, 2) })];
  }
  function areaTable(rows) {
    var table = el("table", { class: "sk-areas" }, [el("tr", {}, [el("th", { text: t("item") }), el("th", { text: t("area_m2") }), el("th", { text: t("hectares") }), el("th", { text: t("mu") })])]);
    rows.forEach(function (r) { table.appendChild(el("tr", { "data-row": r[0] }, [el("th", { text: r[1] })].concat(areaCells(r[2])))); });
    return table;
  }
  // a checked layer's name: the process gives it in Chinese; the English page shows the
  // layer's title from the list (in the page's language) where the caller has it
  function layerName(l) {
    var L = LANG === "en" && state.layers[l.layer];
    return L ? L.meta.title : l.name;
  }
  function verdictTag(v) { return el("span", { class: "sk-verdict sk-verdict-" + v, "data-verdict": v, text: verdictText(v) }); }

  function renderReport(compliance, precheck) {
    var box = $("#sk-report");
    box.textContent = "";
    box.appendChild(el("h2", { text: t("report") }));
    if (!signedIn) box.appendChild(el("p", { class: "sk-note", id: "sk-report-anonymous", text: t("report_anonymous") }));
    var p = (compliance || precheck).proposal;
    var source = TEXT["source_" + p.source] || p.source;
    var said = [t("report_source", { source: source })];
    if (p.gk_zone) said.push(t("report_zone", { zone: p.gk_zone }));
    said.push(t("report_date", { date: (compliance || precheck).as_of }));
    box.appendChild(el("p", { text: said.join(t("separator")) }));
    box.appendChild(areaTable([["proposal-planar", t("area_planar"), p.area.planar], ["proposal-ellipsoidal", t("area_ellipsoidal"), p.area.ellipsoidal]]));
    if (compliance) {
      box.appendChild(el("h3", {}, [t("compliance") + GAP, verdictTag(compliance.verdict)]));
      var rules = el("table", { class: "sk-rules" }, [el("tr", {}, ["layer", "version", "overlap_m2", "ha", "mu_short", "verdict", "note"].map(function (h) { return el("th", { text: t(h) }); }))]);
      compliance.layers.forEach(function (l) {
        rules.appendChild(el("tr", { "data-layer": l.layer }, [el("td", { text: layerName(l) }), el("td", { text: l.version || "—" })].concat(areaCells(l.overlap.planar)).concat([el("td", {}, [verdictTag(l.verdict)]), el("td", { text: l.reason || "" })])));
      });
      box.appendChild(rules);
      if (compliance.figure_png) box.appendChild(el("img", { class: "sk-figure", alt: t("figure"), src: "data:image/png;base64," + compliance.figure_png }));
      if (compliance.overlaps && compliance.overlaps.features.length) {
        if (!map.getSource("sk-overlaps")) {
          map.addSource("sk-overlaps", { type: "geojson", data: compliance.overlaps });
          map.addLayer({ id: "sk-overlap-fill", type: "fill", source: "sk-overlaps", paint: { "fill-color": "#c62828", "fill-opacity": 0.5 } });
        } else map.getSource("sk-overlaps").setData(compliance.overlaps);
      }
    }
    if (precheck) {
      box.appendChild(el("h3", {}, [t("precheck") + GAP, verdictTag(precheck.verdict)]));
      box.appendChild(areaTable(Object.keys(precheck.classes).map(function (k) { return ["class-" + k, TEXT["class_" + k] || k, precheck.classes[k].total]; })
        .concat([["balance", t("balance"), precheck.farmland_balance.to_supplement]])));
      var bnd = precheck.boundary;
      box.appendChild(el("p", { text: t("boundary", {
        result: bnd.valid ? t("valid") : t("invalid", { problem: bnd.problem || "" }),
        points: fmt(bnd.point_count, 0), declared: fmt(bnd.declared_area_ha, 4), computed: fmt(bnd.computed_planar_ha, 4),
      }) }));
      (precheck.control_line_conflicts || []).forEach(function (c) {
        box.appendChild(el("p", {}, [layerName(c) + (LANG === "zh" ? "：" : ":") + GAP, verdictTag(c.verdict), " " + (c.reason || "")]));
      });
      var n = precheck.approved_overlaps.length;
      box.appendChild(el("p", { text: t("approved", { result: n ? t("approved_count", { count: n }) : t("none") }) }));
    }
    box.appendChild(el("button", { type: "button", id: "sk-print", text: t("print") }));
    $("#sk-print").addEventListener("click", function () { document.body.classList.add("sk-printing"); window.print(); document.body.classList.remove("sk-printing"); });
  }

  function runChecks() {
    if (!state.proposal) return;
    $("#sk-run").disabled = true;
    $("#sk-proposal-status").textContent = t("checking");
    var inputs = { proposal: state.proposal };
    // one after the other: the report needs both, and the server runs each on its own
    var both = [];
    var c = postJSON("/processes/planning-compliance/execution", { inputs: { proposal: state.proposal, figure: true } })
      .catch(function (e) { return { error: e }; });
    var p = c.then(function (first) {
      both.push(first);
      return postJSON("/processes/land-approval-precheck/execution", { inputs: inputs }).catch(function (e) { return { error: e }; });
    });
    return p.then(function (second) {
      both.push(second);
      state.reports = { compliance: both[0], precheck: both[1] };
      var ok = both.filter(function (r) { return !r.error; });
      var errors = both.filter(function (r) { return r.error; }).map(function (r) { return r.error.message; });
      if (ok.length) renderReport(both[0].error ? null : both[0], both[1].error ? null : both[1]);
      $("#sk-proposal-status").textContent = errors.length ? t("partly", { errors: errors.join(t("separator")) }) : t("checked");
      $("#sk-run").disabled = false;
    });
  }

  // -- the mine-remediation view ----------------------------------------------------------------
  // The mining rights and remediation projects, the NDVI change between the imagery's
  // first and last versions as tiles drawn by the server (/workbench/mines/ndvi-change),
  // the change per mine and the projects as tables.
  var NDVI_CHANGE = "/workbench/mines/ndvi-change";
  function ndviChangeLayer() {
    if (map.getSource("sk-ndvi-change")) { map.setLayoutProperty("sk-ndvi-change", "visibility", "visible"); return; }
    map.addSource("sk-ndvi-change", {
      type: "raster", tileSize: 256, minzoom: 9, maxzoom: 16,
      tiles: [location.origin + NDVI_CHANGE + "/tiles/WebMercatorQuad/{z}/{y}/{x}"],
    });
    map.addLayer({ id: "sk-ndvi-change", type: "raster", source: "sk-ndvi-change", paint: { "raster-opacity": 0.85 } });
    ["nrp-mining_rights", "nrp-mine_remediation"].forEach(function (id) {
      (state.layers[id] && state.layers[id].ids || []).forEach(function (lid) { if (map.getLayer(lid)) map.moveLayer(lid); });
    });
  }
  function mineTable(report) {
    var rows = [["mine_name", "mine_status", "ndvi_before", "ndvi_after", "ndvi_change", "disturbed", "recovered"].map(function (k) { return t(k); })];
    var table = el("table", { class: "sk-mines", id: "sk-mine-change" }, [el("tr", {}, rows[0].map(function (h) { return el("th", { text: h }); }))]);
    report.mines.forEach(function (m) {
      var change = el("td", { class: "sk-change " + (m.ndvi_change < 0 ? "sk-loss" : "sk-gain"), text: fmt(m.ndvi_change, 3) });
      table.appendChild(el("tr", { "data-mine": String(m.id) }, [
        el("td", { text: m.name || String(m.id) }), el("td", { text: m.status || "—" }),
        el("td", { text: fmt(m.ndvi_before, 3) }), el("td", { text: fmt(m.ndvi_after, 3) }), change,
        el("td", { class: "sk-disturbed", text: fmt(m.disturbed_ha, 2) }), el("td", { class: "sk-recovered", text: fmt(m.recovered_ha, 2) }),
      ]));
    });
    return table;
  }
  function mineView() {
    var box = $("#sk-mines");
    box.textContent = "";
    ["nrp-mining_rights", "nrp-mine_remediation"].forEach(function (id) {
      var L = state.layers[id];
      if (L && !L.on) { L.box.checked = true; enable(id); }
    });
    var status = el("p", { class: "sk-hint", id: "sk-mine-status", text: t("ndvi_computing") });
    box.appendChild(status);
    var changeBox = el("div", { id: "sk-mine-change-box" });
    var projectBox = el("div", { id: "sk-mine-projects" });
    box.appendChild(changeBox);
    box.appendChild(projectBox);
    getJSON(NDVI_CHANGE).then(function (report) {
      ndviChangeLayer();
      status.textContent = t("ndvi_status", {
        before: report.before_version, after: report.after_version,
        disturbed: report.thresholds.disturbed, recovered: report.thresholds.recovered,
      });
      changeBox.appendChild(el("h3", { text: t("mine_change") }));
      changeBox.appendChild(mineTable(report));
      var L = state.layers["nrp-mining_rights"];
      var b = L && L.meta.bbox;
      if (b) map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 30, duration: 0 });
    }).catch(function (err) { status.textContent = t("ndvi_failed", { message: err.message }); });
    getJSON("/collections/nrp-mine_remediation/items?f=json&limit=200").then(function (fc) {
      var table = el("table", { class: "sk-mines", id: "sk-mine-project-table" }, [el("tr", {}, ["project", "project_mine", "project_licence", "project_method", "project_area", "project_done"].map(function (h) { return el("th", { text: t(h) }); }))]);
      fc.features.forEach(function (f) {
        var p = f.properties;
        table.appendChild(el("tr", {}, [p["项目名称"], p["所属矿山"], p["许可证号"], p["修复方式"], fmt(p["修复面积公顷"], 2), p["竣工日期"]].map(function (v) { return el("td", { text: v === undefined || v === null ? "—" : String(v) }); })));
      });
      projectBox.appendChild(el("h3", { text: t("projects") }));
      projectBox.appendChild(table);
    }).catch(function (err) { projectBox.textContent = t("projects_failed", { message: err.message }); });
  }

  // -- start ------------------------------------------------------------------------------------
  $("#sk-draw").addEventListener("click", startDrawing);
  $("#sk-finish").addEventListener("click", finishDrawing);
  $("#sk-proposal-file").addEventListener("change", function (e) { if (e.target.files[0]) upload(e.target.files[0]); });
  $("#sk-run").addEventListener("click", runChecks);
  $("#sk-mine-view").addEventListener("click", mineView);

  // The page's first frame needs only the layer list (in the page) and the tiles of the
  // layers shown on opening; aliases and the live stream are read after it.
  function start(catalog) {
    state.catalog = catalog;
    buildPanel(catalog);
    var wanted = new URLSearchParams(location.search).get("layers");
    var ids = Object.keys(state.layers);
    var on = (wanted === "all" ? ids : (wanted !== null ? wanted.split(",") : DEFAULT_ON))
      .filter(function (id) { return state.layers[id]; });
    var bounds = extentOf(catalog);
    var options = { container: "sk-map", style: openingStyle(on), attributionControl: false, fadeDuration: 0 };
    // (MapLibre takes an option given as undefined as a value: set only what applies)
    if (bounds) { options.bounds = bounds; options.fitBoundsOptions = { padding: 20 }; }
    else { options.center = [113.3, 33.8]; options.zoom = 10; }
    map = new maplibregl.Map(options);
    window.shikongMap = map;
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
    map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");
    map.on("click", onClick);
    map.on("click", onDrawClick);
    map.on("dblclick", function () { if (state.drawing) finishDrawing(); });
    map.once("idle", function () { loadAliases(); connectLive(); });
    return new Promise(function (ok) { map.on("load", ok); }).then(function () {
      // (no style change here for the layers already drawn: with software WebGL one more
      // frame of the whole map costs hundreds of milliseconds)
      // layers whose style did not come with the page are read now
      return Promise.all(on.filter(function (id) { return !state.layers[id].on; }).map(function (id) {
        state.layers[id].box.checked = true;
        return enable(id);
      }));
    });
  }

  function bootCatalog() {
    var node = document.getElementById("sk-boot");
    try { if (node) return Promise.resolve(JSON.parse(node.textContent)); } catch (e) { /* read it */ }
    return getJSON("/workbench/layers?lang=" + LANG);
  }

  bootCatalog().then(start)
    .then(function () {
      state.ready = true;
      document.body.setAttribute("data-ready", "true");
    })
    .catch(function (err) { $("#sk-layers").textContent = t("layers_failed", { message: err.message }); });
})();
