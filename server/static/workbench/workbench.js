// 一张图 workbench: the caller's layers on one MapLibre map, a time slider, feature
// attributes with Chinese aliases, live sensors (server-sent events) and the proposal
// check. Everything it loads comes from this server, through the same gate as any client;
// writes carry the CSRF token from the shikong_csrf cookie (session.js).
(function () {
  "use strict";

  var VERDICTS = {
    compliant: "合规", needs_review: "需复核", conflict: "冲突",
    incomplete: "未完成（部分图层不可用）", not_checked: "未检查（不可用，请登录或申请权限）"
  };
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
  var HIDDEN_NOTE = signedIn ? "不存在或您无权查看" : "不存在或对您不可见：登录后可能看到更多";

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
    return n.toLocaleString("zh-CN", { maximumFractionDigits: digits === undefined ? 2 : digits });
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
    $("#sk-time-label").textContent = date ? date + " 起有效的版本" : "现行版本";
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
    var opacity = el("input", { type: "range", min: "0", max: "100", value: "100", "data-opacity": meta.id, title: "不透明度" });
    var up = el("button", { type: "button", "data-up": meta.id, title: "上移", text: "↑" });
    var down = el("button", { type: "button", "data-down": meta.id, title: "下移", text: "↓" });
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
    if (!signedIn) panel.appendChild(el("p", { class: "sk-note", id: "sk-anonymous-note", text: "未登录：只列出公开图层。看不到的图层对您不可见，登录后可能看到更多。" }));
    catalog.departments.forEach(function (dept) {
      var list = el("ul", { class: "sk-layer-list" });
      dept.layers.forEach(function (meta) { list.appendChild(layerRow(meta)); });
      panel.appendChild(el("details", { open: "", class: "sk-department", "data-department": dept.code }, [
        el("summary", { text: dept.name + "（" + dept.layers.length + "）" }), list,
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
      var text = value === null || value === undefined ? "—" : (typeof value === "boolean" ? (value ? "是" : "否") : fmt(value, 6));
      if (a && a.unit && value !== null && value !== undefined) text += " " + a.unit;
      table.appendChild(el("tr", { "data-field": k }, [el("th", { text: a ? a.alias : k, title: k }), el("td", { text: text })]));
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
    var box = el("div", { class: "sk-record", id: "sk-parcel-record" }, [el("p", { text: "读取登记记录…" })]);
    getJSON("/collections/rer-parcels/items/" + encodeURIComponent(fid) + "?f=json").then(function (item) {
      box.textContent = "";
      box.appendChild(el("h4", { text: "不动产登记记录" }));
      box.appendChild(attributeTable(cid, item.properties));
    }).catch(function (err) { box.textContent = "登记记录：" + err.message; });
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
    var text = (a.time || "") + " " + (a.sensor || a.sensor_id || "") + " " + (a.message || a.rule || a.level || "告警");
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
    $("#sk-proposal-status").textContent = "单击地图添加拐点，双击或“完成”闭合红线";
  }
  function finishDrawing() {
    var pts = state.drawing;
    state.drawing = null;
    map.doubleClickZoom.enable();
    map.getCanvas().style.cursor = "";
    if (!pts || pts.length < 3) { setProposal(null, null, "至少需要 3 个拐点"); return; }
    var ring = pts.concat([pts[0]]);
    var geometry = { type: "Polygon", coordinates: [ring] };
    setProposal(geometry, { type: "Feature", properties: {}, geometry: geometry }, "已绘制红线（" + pts.length + " 个拐点）");
  }
  function onDrawClick(e) {
    if (!state.drawing) return;
    state.drawing.push([e.lngLat.lng, e.lngLat.lat]);
    var pts = state.drawing;
    var geometry = pts.length >= 3 ? { type: "Polygon", coordinates: [pts.concat([pts[0]])] } : { type: "LineString", coordinates: pts.length > 1 ? pts : [pts[0], pts[0]] };
    drawOutline({ type: "Feature", properties: {}, geometry: geometry });
  }

  function upload(file) {
    $("#sk-proposal-status").textContent = "读取 " + file.name + " …";
    return fetch("/workbench/proposal", {
      method: "POST", credentials: "same-origin", body: file,
      headers: { "content-type": "application/octet-stream", "x-file-name": encodeURIComponent(file.name), "x-csrf-token": csrf() },
    }).then(function (r) { return r.ok ? r.json() : fail(r); }).then(function (answer) {
      setProposal(answer.proposal, answer.outline, "已读取 " + answer.name);
    }).catch(function (err) { setProposal(null, null, "无法读取：" + err.message); });
  }

  function areaCells(a) {
    return [el("td", { class: "sk-m2", text: fmt(a.m2, 2) }), el("td", { class: "sk-ha", text: fmt(a.ha, 4) }), el("td", { class: "sk-mu", text: fmt(a.mu, 2) })];
  }
  function areaTable(rows) {
    var table = el("table", { class: "sk-areas" }, [el("tr", {}, [el("th", { text: "项目" }), el("th", { text: "面积（m²）" }), el("th", { text: "公顷" }), el("th", { text: "亩" })])]);
    rows.forEach(function (r) { table.appendChild(el("tr", { "data-row": r[0] }, [el("th", { text: r[1] })].concat(areaCells(r[2])))); });
    return table;
  }
  function verdictTag(v) { return el("span", { class: "sk-verdict sk-verdict-" + v, "data-verdict": v, text: VERDICTS[v] || v }); }

  function renderReport(compliance, precheck) {
    var box = $("#sk-report");
    box.textContent = "";
    box.appendChild(el("h2", { text: "项目用地审查报告" }));
    if (!signedIn) box.appendChild(el("p", { class: "sk-note", id: "sk-report-anonymous", text: "以未登录身份审查：只叠加了对您可见的图层，对看不到的图层不作结论。登录后结论可能不同。" }));
    var p = (compliance || precheck).proposal;
    box.appendChild(el("p", { text: "红线来源：" + p.source + (p.gk_zone ? "；高斯-克吕格 3° 带第 " + p.gk_zone + " 带" : "") + "；审查日期 " + (compliance || precheck).as_of }));
    box.appendChild(areaTable([["proposal-planar", "红线面积（高斯平面）", p.area.planar], ["proposal-ellipsoidal", "红线面积（椭球面）", p.area.ellipsoidal]]));
    if (compliance) {
      box.appendChild(el("h3", {}, ["国土空间规划符合性审查：", verdictTag(compliance.verdict)]));
      var t = el("table", { class: "sk-rules" }, [el("tr", {}, ["图层", "版本", "重叠 m²", "公顷", "亩", "结论", "说明"].map(function (h) { return el("th", { text: h }); }))]);
      compliance.layers.forEach(function (l) {
        t.appendChild(el("tr", { "data-layer": l.layer }, [el("td", { text: l.name }), el("td", { text: l.version || "—" })].concat(areaCells(l.overlap.planar)).concat([el("td", {}, [verdictTag(l.verdict)]), el("td", { text: l.reason || "" })])));
      });
      box.appendChild(t);
      if (compliance.figure_png) box.appendChild(el("img", { class: "sk-figure", alt: "重叠示意图", src: "data:image/png;base64," + compliance.figure_png }));
      if (compliance.overlaps && compliance.overlaps.features.length) {
        if (!map.getSource("sk-overlaps")) {
          map.addSource("sk-overlaps", { type: "geojson", data: compliance.overlaps });
          map.addLayer({ id: "sk-overlap-fill", type: "fill", source: "sk-overlaps", paint: { "fill-color": "#c62828", "fill-opacity": 0.5 } });
        } else map.getSource("sk-overlaps").setData(compliance.overlaps);
      }
    }
    if (precheck) {
      box.appendChild(el("h3", {}, ["建设用地报批预审：", verdictTag(precheck.verdict)]));
      box.appendChild(areaTable(Object.keys(precheck.classes).map(function (k) { return ["class-" + k, k, precheck.classes[k].total]; })
        .concat([["balance", "需补充耕地（占补平衡）", precheck.farmland_balance.to_supplement]])));
      var bnd = precheck.boundary;
      box.appendChild(el("p", { text: "界址检查：" + (bnd.valid ? "有效" : "无效：" + (bnd.problem || "")) + "；界址点 " + fmt(bnd.point_count, 0) + " 个；申报 " + fmt(bnd.declared_area_ha, 4) + " 公顷，计算 " + fmt(bnd.computed_planar_ha, 4) + " 公顷" }));
      (precheck.control_line_conflicts || []).forEach(function (c) {
        box.appendChild(el("p", {}, [c.name + "：", verdictTag(c.verdict), " " + (c.reason || "")]));
      });
      box.appendChild(el("p", { text: "与已批用地重叠：" + (precheck.approved_overlaps.length ? precheck.approved_overlaps.length + " 处" : "无") }));
    }
    box.appendChild(el("button", { type: "button", id: "sk-print", text: "打印报告" }));
    $("#sk-print").addEventListener("click", function () { document.body.classList.add("sk-printing"); window.print(); document.body.classList.remove("sk-printing"); });
  }

  function runChecks() {
    if (!state.proposal) return;
    $("#sk-run").disabled = true;
    $("#sk-proposal-status").textContent = "审查中…";
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
      $("#sk-proposal-status").textContent = errors.length ? "部分审查未完成：" + errors.join("；") : "审查完成";
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
    var rows = [["名称", "状态", "NDVI（前）", "NDVI（后）", "NDVI 变化", "受损（公顷）", "恢复（公顷）"]];
    var t = el("table", { class: "sk-mines", id: "sk-mine-change" }, [el("tr", {}, rows[0].map(function (h) { return el("th", { text: h }); }))]);
    report.mines.forEach(function (m) {
      var change = el("td", { class: "sk-change " + (m.ndvi_change < 0 ? "sk-loss" : "sk-gain"), text: fmt(m.ndvi_change, 3) });
      t.appendChild(el("tr", { "data-mine": String(m.id) }, [
        el("td", { text: m.name || String(m.id) }), el("td", { text: m.status || "—" }),
        el("td", { text: fmt(m.ndvi_before, 3) }), el("td", { text: fmt(m.ndvi_after, 3) }), change,
        el("td", { class: "sk-disturbed", text: fmt(m.disturbed_ha, 2) }), el("td", { class: "sk-recovered", text: fmt(m.recovered_ha, 2) }),
      ]));
    });
    return t;
  }
  function mineView() {
    var box = $("#sk-mines");
    box.textContent = "";
    ["nrp-mining_rights", "nrp-mine_remediation"].forEach(function (id) {
      var L = state.layers[id];
      if (L && !L.on) { L.box.checked = true; enable(id); }
    });
    var status = el("p", { class: "sk-hint", id: "sk-mine-status", text: "计算植被指数（NDVI）变化…" });
    box.appendChild(status);
    var changeBox = el("div", { id: "sk-mine-change-box" });
    var projectBox = el("div", { id: "sk-mine-projects" });
    box.appendChild(changeBox);
    box.appendChild(projectBox);
    getJSON(NDVI_CHANGE).then(function (report) {
      ndviChangeLayer();
      status.textContent = "NDVI 变化：" + report.before_version + " → " + report.after_version +
        "（褐色为植被减少，绿色为恢复；变化 < " + report.thresholds.disturbed + " 计为受损，> " + report.thresholds.recovered + " 计为恢复）";
      changeBox.appendChild(el("h3", { text: "各矿山植被变化" }));
      changeBox.appendChild(mineTable(report));
      var L = state.layers["nrp-mining_rights"];
      var b = L && L.meta.bbox;
      if (b) map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 30, duration: 0 });
    }).catch(function (err) { status.textContent = "NDVI 变化：" + err.message; });
    getJSON("/collections/nrp-mine_remediation/items?f=json&limit=200").then(function (fc) {
      var t = el("table", { class: "sk-mines", id: "sk-mine-project-table" }, [el("tr", {}, ["项目", "所属矿山", "许可证号", "修复方式", "修复面积（公顷）", "竣工日期"].map(function (h) { return el("th", { text: h }); }))]);
      fc.features.forEach(function (f) {
        var p = f.properties;
        t.appendChild(el("tr", {}, [p["项目名称"], p["所属矿山"], p["许可证号"], p["修复方式"], fmt(p["修复面积公顷"], 2), p["竣工日期"]].map(function (v) { return el("td", { text: v === undefined || v === null ? "—" : String(v) }); })));
      });
      projectBox.appendChild(el("h3", { text: "修复项目" }));
      projectBox.appendChild(t);
    }).catch(function (err) { projectBox.textContent = "修复项目：" + err.message; });
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
    return getJSON("/workbench/layers");
  }

  bootCatalog().then(start)
    .then(function () {
      state.ready = true;
      document.body.setAttribute("data-ready", "true");
    })
    .catch(function (err) { $("#sk-layers").textContent = "无法读取图层：" + err.message; });
})();
