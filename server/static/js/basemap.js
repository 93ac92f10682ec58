// shikong pages: the basemap under a Leaflet map, as the server's SHIKONG_BASEMAP says
// (server/workbench/basemap.py): "none", "platform" (the platform's own layers as vector
// tiles in their styles, /styles/default, drawn by MapLibre GL) or a tile URL template.
// No basemap, or one that fails to load, leaves a visible note on the map, never a blank.
function shikongBasemap(map, cfg, text) {
  "use strict";
  cfg = cfg || {};
  if (map.options.maxZoom === undefined) map.setMaxZoom(18);  // markercluster needs one
  var note = null;
  function say(message) {
    if (note) { note.getContainer().textContent = message; return; }
    var Note = L.Control.extend({
      onAdd: function () {
        var div = L.DomUtil.create("div", "sk-basemap-note");
        div.textContent = message;
        return div;
      }
    });
    note = new Note({position: "topright"});
    note.addTo(map);
  }
  var kind = cfg.kind || (cfg.url ? "url" : "none");
  if (kind === "platform") {
    var style = text.base + "/styles/default";
    if (!(window.maplibregl && L.maplibreGL)) { say(text.failed); return null; }
    var gl = L.maplibreGL({style: style, attributionControl: false});
    gl.addTo(map);
    var glmap = gl.getMaplibreMap && gl.getMaplibreMap();
    if (glmap) glmap.on("error", function (e) {
      if (e && e.error && String(e.error.status || "").match(/^[45]/)) say(text.failed);
    });
    return gl;
  }
  if (kind === "url" && cfg.url) {
    var layer = L.tileLayer(cfg.url, {
      maxZoom: 18,
      subdomains: cfg.subdomains || "abc",
      attribution: cfg.attribution || ""
    });
    var failures = 0, loaded = 0;
    layer.on("tileload", function () { loaded += 1; });
    layer.on("tileerror", function () {
      failures += 1;
      if (failures >= 4 && loaded === 0) say(text.failed);
    });
    layer.addTo(map);
    return layer;
  }
  say(text.none);
  return null;
}
