"""Planning compliance, land-approval pre-check and area by class, on catalog layers.

The geometry is :mod:`shikong.spatial.overlay`; this module decides which layers (and
which of their versions) a question reads, and turns overlaps into the reports the
approval workflow uses. Rules and land-class groupings are data in ``config/``.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import geopandas as gpd
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from shikong.config import load as load_config
from shikong.spatial.area import Area, measure
from shikong.spatial.crs import gk_zone
from shikong.spatial.errors import InputError
from shikong.spatial.overlay import Overlay, overlay, overlay_geometries, polygonal
from shikong.spatial.readers import parse_coordinate_text

from .catalog import Catalog
from .layer import LayerNotFound
from .opened import open_layer

HA_DECIMALS, MU_DECIMALS = 4, 2


class ProposalError(InputError):
    """The proposal (boundary) cannot be used as given."""


@dataclass
class Proposal:
    """A boundary to check, in EPSG:4490, with what its source declared."""

    geometry: BaseGeometry
    source: str
    declared_area_ha: float | None = None
    point_count: int | None = None
    notes: list[str] = field(default_factory=list)


def _area(a: Area) -> dict[str, float]:
    return a.as_dict(HA_DECIMALS, MU_DECIMALS)


def _from_geojson(obj: dict[str, Any]) -> BaseGeometry:
    kind = obj.get("type")
    if kind == "FeatureCollection":
        geoms = [_from_geojson(f) for f in obj.get("features", [])]
        if not geoms:
            raise ProposalError("proposal", "the FeatureCollection has no features")
        return shapely.union_all(geoms)
    if kind == "Feature":
        if not obj.get("geometry"):
            raise ProposalError("proposal", "the Feature has no geometry")
        return _from_geojson(obj["geometry"])
    try:
        return shape(obj)
    except Exception as exc:
        raise ProposalError("proposal", f"not a GeoJSON geometry: {exc}") from None


def load_proposal(catalog: Catalog, value: Any) -> Proposal:
    """A proposal from GeoJSON (CRS84 or EPSG:4490), 坐标报盘 text or a catalog feature.

    A feature reference is ``{"collection": "nrp-approval_submission", "feature": 0}``.
    """
    notes: list[str] = []
    declared = points = None
    if isinstance(value, str):
        text = value.strip()
        if "[地块坐标]" in text or "[属性描述]" in text:
            frame, report = parse_coordinate_text(text, source="坐标报盘")
            geometry = shapely.union_all(frame.geometry.values)
            declared = float(frame["declared_area_ha"].sum())
            points = int(frame["point_count"].sum())
            notes += report.actions
            source = "坐标报盘"
        else:
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ProposalError(
                    "proposal", "text is neither GeoJSON nor a 坐标报盘 file"
                ) from None
    if isinstance(value, dict) and "collection" in value and "type" not in value:
        layer = catalog.layer(str(value["collection"]))
        frame = layer.to_geodataframe()
        id_field = layer.current.id_field
        match = frame[frame[id_field].astype(str) == str(value.get("feature"))]
        if match.empty:
            raise ProposalError("proposal", f"no feature {value.get('feature')!r} in {layer.id}")
        geometry = match.geometry.iloc[0]
        source = f"{layer.id}/{value.get('feature')}"
        row = match.iloc[0]
        if "declared_area_ha" in match.columns:
            declared = float(row["declared_area_ha"])
    elif isinstance(value, dict):
        crs = (value.get("crs") or {}).get("properties", {}).get("name", "")
        if crs and not any(code in crs for code in ("CRS84", "4326", "4490")):
            raise ProposalError("proposal", f"GeoJSON must be in CRS84 or EPSG:4490, not {crs}")
        geometry = _from_geojson(value)
        source = "GeoJSON"
    elif not isinstance(value, str):
        raise ProposalError("proposal", "give GeoJSON, 坐标报盘 text or {collection, feature}")
    geometry = polygonal(geometry)
    if geometry.is_empty:
        raise ProposalError("proposal", "the boundary has no area (not a polygon?)")
    x0, y0, x1, y1 = geometry.bounds
    if not (73 <= x0 <= x1 <= 136 and 3 <= y0 <= y1 <= 54):
        raise ProposalError(
            "proposal",
            f"coordinates ({x0:.4f}, {y0:.4f}) lie outside China:"
            " give lon/lat in CRS84 or EPSG:4490",
        )
    return Proposal(geometry, source, declared, points, notes)


def boundary_checks(proposal: Proposal) -> dict[str, Any]:
    """Closed rings, self-intersection, one GK zone, point count, declared vs computed area."""
    g = proposal.geometry
    coords = shapely.get_coordinates(g)
    zones = sorted({gk_zone(float(x)).number for x in coords[:, 0]})
    checks: dict[str, Any] = {
        "closed_rings": all(
            r.is_closed for p in shapely.get_parts(g) for r in [p.exterior, *p.interiors]
        ),
        "valid": bool(g.is_valid),
        "problem": None if g.is_valid else shapely.is_valid_reason(g),
        "zones": zones,
        "one_zone": len(zones) == 1,
        "point_count": len(coords) if proposal.point_count is None else proposal.point_count,
    }
    computed = measure(g)
    if proposal.declared_area_ha is not None:
        diff = computed.planar.hectares - proposal.declared_area_ha
        checks["declared_area_ha"] = proposal.declared_area_ha
        checks["computed_planar_ha"] = round(computed.planar.hectares, HA_DECIMALS)
        checks["difference_ha"] = round(diff, HA_DECIMALS)
        checks["difference_m2"] = round(diff * 10_000, 2)
    return checks


def _layer_frame(catalog: Catalog, collection: str, proposal: Proposal, as_of: Any):
    """The layer and its features (valid on as_of) that intersect the proposal's bbox."""
    layer = catalog.layer(collection)
    version = layer.as_of(as_of) if as_of else layer.current
    return layer, version.features(tuple(proposal.geometry.bounds))


def _overlay_layer(
    catalog: Catalog, collection: str, proposal: Proposal, as_of: Any, zone, sliver_m2: float = 0.0
):
    """Overlay on a layer's opened (cached) asset: only pieces' attributes are converted."""
    layer = catalog.layer(collection)
    version = layer.as_of(as_of) if as_of else layer.current
    id_field = _id_field(layer)
    opened = open_layer(version.asset_path, id_field)
    rows = opened.bbox_rows(tuple(proposal.geometry.bounds))
    result = overlay_geometries(
        proposal.geometry,
        opened.geometries(rows),
        lambda positions: opened.records(rows[positions]),
        id_field=id_field,
        sliver_m2=sliver_m2,
        zone=zone,
    )
    return layer, result


def _pieces_geojson(name: str, result: Overlay, class_field: str | None) -> list[dict]:
    return [
        {
            "type": "Feature",
            "geometry": mapping(p.geometry),
            "properties": {
                "layer": name,
                "feature_id": p.feature_id,
                "class": p.attributes.get(class_field) if class_field else None,
                "area_m2": round(p.ellipsoidal.m2, 2),
                "sliver": p.sliver,
            },
        }
        for p in result.pieces
    ]


def planning_compliance(
    catalog: Catalog,
    proposal_input: Any,
    as_of: Any = None,
    figure: bool = False,
    rules: dict | None = None,
) -> dict[str, Any]:
    """Overlay a proposal on the control layers and give each rule's verdict."""
    rules = rules or load_config("compliance_rules")
    order = rules["verdict_order"]
    sliver = float(rules.get("sliver_tolerance_m2", 0))
    proposal = load_proposal(catalog, proposal_input)
    as_of = as_of or datetime.now(UTC).date().isoformat()
    total = measure(proposal.geometry)
    zone = total.zone
    layers, pieces, verdicts = [], [], []
    context: dict[str, tuple[str, gpd.GeoDataFrame]] = {}
    for rule in rules["layers"]:
        name, class_field = rule.get("name", rule["collection"]), rule.get("class_field")
        try:
            layer, result = _overlay_layer(
                catalog, rule["collection"], proposal, as_of, zone, sliver
            )
        except LayerNotFound:  # absent, or hidden from this caller: never say which
            layers.append(
                {
                    "layer": rule["collection"],
                    "name": name,
                    "available": False,
                    "verdict": NOT_CHECKED,
                    "reason": NOT_VISIBLE,
                }
            )
            continue
        except InputError as exc:  # no version valid on as_of
            layers.append(
                {
                    "layer": rule["collection"],
                    "name": name,
                    "available": False,
                    "verdict": "needs_review",
                    "reason": str(exc),
                }
            )
            verdicts.append("needs_review")
            continue
        occupied = bool(result.kept())
        entry: dict[str, Any] = {
            "layer": layer.id,
            "name": name,
            "version": layer.as_of(as_of).version,
            "occupied": occupied,
            "overlap": {"ellipsoidal": _area(result.ellipsoidal), "planar": _area(result.planar)},
            "share": round(result.ellipsoidal.m2 / total.ellipsoidal.m2, 6),
            "features": [
                {
                    "id": p.feature_id,
                    "class": p.attributes.get(class_field) if class_field else None,
                    "area": _area(p.ellipsoidal),
                }
                for p in result.kept()
            ],
            "slivers_ignored": sum(p.sliver for p in result.pieces),
        }
        verdict, reason = _verdict(rule, result, total, sliver, class_field, order)
        entry["verdict"], entry["reason"] = verdict, reason
        if verdict is not None:
            verdicts.append(verdict)
        layers.append(entry)
        pieces += _pieces_geojson(name, result, class_field)
        if figure and not rule.get("report_only"):
            label = f"{name} {rule.get('name_en', '')}".strip()
            context[layer.id] = (label, _around(layer, proposal, as_of))
    unchecked = [entry["layer"] for entry in layers if entry["verdict"] == NOT_CHECKED]
    overall = max(verdicts, key=order.index) if verdicts else "compliant"
    if unchecked and overall != order[-1]:
        overall = INCOMPLETE  # no verdict on layers the caller cannot see
    report = {
        "proposal": {
            "source": proposal.source,
            "area": {"ellipsoidal": _area(total.ellipsoidal), "planar": _area(total.planar)},
            "gk_zone": zone.number,
            "gk_epsg": zone.epsg(),
            "notes": proposal.notes,
            "geometry": mapping(proposal.geometry),
        },
        "as_of": str(as_of),
        "layers": layers,
        "verdict": overall,
        "unchecked_layers": unchecked,
        "overlaps": {"type": "FeatureCollection", "features": pieces},
    }
    if figure:
        figure_png = render_figure(proposal, context, report, rules)
        report["figure_png"] = base64.b64encode(figure_png).decode()
    return report


def _around(layer, proposal: Proposal, as_of: Any) -> gpd.GeoDataFrame:
    """A layer's features around a proposal, for the map figure's context."""
    x0, y0, x1, y1 = proposal.geometry.bounds
    pad = max(x1 - x0, y1 - y0) * 0.6
    return layer.to_geodataframe(bbox=(x0 - pad, y0 - pad, x1 + pad, y1 + pad), as_of=as_of)


def _id_field(layer) -> str:
    return layer.current.id_field


def _verdict(
    rule: dict, result: Overlay, total, sliver: float, class_field: str | None, order: list[str]
) -> tuple[str | None, str | None]:
    if rule.get("report_only"):
        return None, None
    when = rule.get("when")
    if when == "occupied":
        if result.kept():
            return rule["verdict"], rule.get("reason")
        return "compliant", None
    if when == "not_covered":
        outside = total.ellipsoidal.m2 - result.ellipsoidal.m2
        if outside > sliver:
            return rule["verdict"], f"{rule.get('reason', '')}（{outside:,.2f} m²）"
        return "compliant", None
    if "classes" in rule:
        found = []
        for value in result.by(class_field):
            outcome = rule["classes"].get(value, rule.get("default"))
            if isinstance(outcome, str):
                outcome = {"verdict": outcome}
            found.append((outcome["verdict"], outcome.get("reason", str(value))))
        if not found:
            return "compliant", None
        worst = max(found, key=lambda f: order.index(f[0]))
        reasons = "；".join(sorted({r for v, r in found if v == worst[0]}))
        return worst[0], reasons
    return None, None


# A control layer the caller cannot read (absent, or not visible to this caller: the two
# are answered alike, so a report never reveals that a hidden layer exists) is not
# checked, and an overall verdict short of a conflict is then "incomplete", never a
# verdict on layers the caller did not see.
NOT_CHECKED = "not_checked"
INCOMPLETE = "incomplete"
NOT_VISIBLE = (
    "图层不可用：未登录、无权查看或不存在，登录或向所属部门申请后可检查 "
    "(not available to you: sign in, or ask its department for access; "
    "it may also not be in the catalog)"
)

VERDICT_LOOK = {  # verdict -> (Chinese, English, colour)
    "compliant": ("合规", "compliant", "#2e7d32"),
    "needs_review": ("需复核", "needs review", "#e65100"),
    "conflict": ("冲突", "conflict", "#c62828"),
    INCOMPLETE: ("未完成（部分图层不可用）", "incomplete (layers not available)", "#616161"),
    NOT_CHECKED: ("未检查", "not checked", "#9e9e9e"),
}
CONTEXT_COLOURS = ("#1f77b4", "#9467bd", "#8c564b", "#17becf", "#7f7f7f", "#bcbd22", "#e377c2")


def verdict_label(verdict: str | None) -> str:
    """合规 compliant / 冲突 conflict / 需复核 needs review, as the figure prints them."""
    zh, en, _ = VERDICT_LOOK.get(verdict or "", (verdict or "—", "", "black"))
    return f"{zh} {en}".strip()


def _problem_areas(
    proposal: Proposal, report: dict[str, Any], rules: dict
) -> list[tuple[BaseGeometry, str]]:
    """Where the proposal breaks a rule, with that rule's verdict: the overlaps that
    count for occupied and class rules, and the part outside for a not_covered rule
    (an urban boundary's overlap is the good part, not the problem)."""
    pieces: dict[str, list[dict]] = {}
    for feature in report["overlaps"]["features"]:
        if not feature["properties"]["sliver"]:
            pieces.setdefault(feature["properties"]["layer"], []).append(feature)
    out = []
    for rule in rules["layers"]:
        name = rule.get("name", rule["collection"])
        found = pieces.get(name, [])
        if rule.get("report_only"):
            continue
        if rule.get("when") == "occupied":
            out += [(shape(f["geometry"]), rule["verdict"]) for f in found]
        elif rule.get("when") == "not_covered":
            covered = shapely.union_all([shape(f["geometry"]) for f in found])
            outside = polygonal(proposal.geometry.difference(covered))
            if not outside.is_empty and measure(outside).ellipsoidal.m2 > rules.get(
                "sliver_tolerance_m2", 0
            ):
                out.append((outside, rule["verdict"]))
        elif "classes" in rule:
            for f in found:
                outcome = rule["classes"].get(f["properties"]["class"], rule.get("default"))
                verdict = outcome if isinstance(outcome, str) else (outcome or {}).get("verdict")
                if verdict and verdict != "compliant":
                    out.append((shape(f["geometry"]), verdict))
    return out


def render_figure(
    proposal: Proposal,
    context: dict[str, tuple[str, gpd.GeoDataFrame]],
    report: dict[str, Any],
    rules: dict,
) -> bytes:
    """The compliance map as PNG bytes."""
    buffer = io.BytesIO()
    compliance_figure(proposal, context, report, rules).savefig(
        buffer, format="png", bbox_inches="tight"
    )
    return buffer.getvalue()


def compliance_figure(
    proposal: Proposal,
    context: dict[str, tuple[str, gpd.GeoDataFrame]],
    report: dict[str, Any],
    rules: dict,
):
    """A map in Chinese (with English): the verdict, the control layers around the
    proposal with each layer's verdict, where the proposal breaks a rule, the boundary.
    ``context`` maps a layer id to its label and features. A plain Figure, outside
    pyplot: nothing to close, no backend switched (a notebook keeps its own), and
    server threads do not share pyplot's state."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from shikong.spatial.fonts import use_cjk_font

    use_cjk_font()  # process-wide, idempotent: it only adds a fallback family
    verdicts = {entry["layer"]: entry for entry in report["layers"]}
    fig = Figure(figsize=(8.6, 6), dpi=110)
    ax = fig.subplots()
    handles, label_colours = [], []
    for i, (layer_id, (label, frame)) in enumerate(context.items()):
        colour = CONTEXT_COLOURS[i % len(CONTEXT_COLOURS)]
        if not frame.empty:  # outlines: filled layers stacked would mix their colours
            frame.plot(ax=ax, facecolor=colour, alpha=0.08)
            frame.boundary.plot(ax=ax, color=colour, linewidth=1.1)
        verdict = verdicts.get(layer_id, {}).get("verdict")
        label = f"{label}：{verdict_label(verdict)}"
        handles.append(Patch(facecolor=colour + "22", edgecolor=colour, label=label))
        label_colours.append(VERDICT_LOOK.get(verdict or "", ("", "", "black"))[2])
    for entry in report["layers"]:
        if entry.get("available") is False:
            handles.append(
                Patch(
                    facecolor="none",
                    edgecolor="grey",
                    linestyle="--",
                    label=f"{entry['name']}：{verdict_label(entry['verdict'])}（不可用）",
                )
            )
            label_colours.append(VERDICT_LOOK.get(entry["verdict"], ("", "", "grey"))[2])
    problems = _problem_areas(proposal, report, rules)
    for verdict, hatch in (("needs_review", "\\\\"), ("conflict", "////")):
        areas = [g for g, v in problems if v == verdict]
        if not areas:
            continue
        zh, en, colour = VERDICT_LOOK[verdict]
        gpd.GeoSeries(areas, crs=4490).plot(
            ax=ax, facecolor=colour, alpha=0.35, edgecolor=colour, hatch=hatch, linewidth=0.8
        )
        handles.append(
            Patch(facecolor=colour, alpha=0.35, edgecolor=colour, hatch=hatch,
                  label=f"{zh}区域 {en} area")
        )  # fmt: skip
        label_colours.append(colour)
    gpd.GeoSeries([proposal.geometry], crs=4490).boundary.plot(ax=ax, color="black", linewidth=1.8)
    handles.append(Patch(facecolor="none", edgecolor="black", label="申请用地 proposal"))
    label_colours.append("black")
    x0, y0, x1, y1 = proposal.geometry.bounds
    pad = max(x1 - x0, y1 - y0) * 0.6
    ax.set_xlim(x0 - pad, x1 + pad)
    ax.set_ylim(y0 - pad, y1 + pad)
    ax.ticklabel_format(useOffset=False)
    ax.tick_params(labelsize=7)
    ax.set_xlabel("经度 longitude (EPSG:4490)", fontsize=8)
    ax.set_ylabel("纬度 latitude", fontsize=8)
    legend = ax.legend(
        handles=handles,
        title="图例 legend（图层：结论 layer: verdict）",
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=8,
        title_fontsize=8,
        framealpha=0.95,
    )
    for text, colour in zip(legend.get_texts(), label_colours, strict=True):
        text.set_color(colour)
    zh, en, colour = VERDICT_LOOK.get(report["verdict"], (report["verdict"], "", "black"))
    area = report["proposal"]["area"]["ellipsoidal"]
    ax.set_title("规划符合性审查 Planning compliance", loc="left", fontsize=11, pad=26)
    ax.text(
        0, 1.015, f"结论 verdict：{zh} {en}", transform=ax.transAxes, fontsize=12,
        color="white", va="bottom",
        bbox={"boxstyle": "round,pad=0.3", "facecolor": colour, "edgecolor": colour},
    )  # fmt: skip
    ax.text(
        1.02, 0.0,
        f"申请用地面积 area：{area['ha']:,.4f} 公顷 ha（{area['mu']:,.2f} 亩）\n"
        f"椭球面积 ellipsoidal, CGCS2000\n数据时点 as of：{report['as_of']}",
        transform=ax.transAxes, fontsize=8, va="bottom", ha="left",
    )  # fmt: skip
    return fig


# -- land approval pre-check ------------------------------------------------------------
def _land_groups() -> tuple[dict[str, str], dict[str, str]]:
    table = load_config("land_classes")
    return ({code: c["group"] for code, c in table["classes"].items()}, table["groups"])


def _ownership_of_code(unit_code: str) -> str:
    return {"G": "国有", "J": "集体"}.get(str(unit_code)[12:13], "待定")


def _ownership_of_qsxz(value: Any) -> str:
    return {"1": "国有", "2": "国有", "3": "集体", "4": "集体"}.get(str(value)[:1], "待定")


def land_approval_precheck(
    catalog: Catalog, proposal_input: Any, as_of: Any = None
) -> dict[str, Any]:
    """建设用地报批预审: classes taken, by ownership, farmland, approvals, control lines."""
    proposal = load_proposal(catalog, proposal_input)
    as_of = as_of or datetime.now(UTC).date().isoformat()
    total = measure(proposal.geometry)
    zone = total.zone
    group_of, group_names = _land_groups()
    landuse_layer, uses = _overlay_layer(catalog, "nrp-landuse", proposal, as_of, zone)
    parcels = None
    try:
        _, parcels = _layer_frame(catalog, "rer-parcels", proposal, as_of)
        if "state" in parcels.columns:
            parcels = parcels[parcels["state"] == 1]
    except (LayerNotFound, InputError):
        parcels = None
    tally: dict[tuple[str, str], float] = {}
    ownership_sources: dict[str, float] = {"cadastre": 0.0, "land survey": 0.0}
    for piece in uses.kept():
        code = str(piece.attributes.get("DLBM", ""))
        group = group_of.get(code, "unknown")
        categories = [group_names.get(group, group)]
        if code.startswith("01"):
            categories.append("耕地")
        for owner, m2, source in _ownership_split(piece, parcels, zone):
            ownership_sources[source] += m2
            for category in categories:
                tally[(category, owner)] = tally.get((category, owner), 0.0) + m2
    _, basic = _overlay_layer(catalog, "nrp-farmland_protection", proposal, as_of, zone)
    for piece in basic.kept():
        for owner, m2, _source in _ownership_split(piece, parcels, zone):
            tally[("永久基本农田", owner)] = tally.get(("永久基本农田", owner), 0.0) + m2
    classes = {}
    for category in ("农用地", "耕地", "永久基本农田", "建设用地", "未利用地"):
        by_owner = {o: _area(Area(m2)) for (c, o), m2 in sorted(tally.items()) if c == category}
        classes[category] = {
            "total": _area(Area(sum(m2 for (c, _), m2 in tally.items() if c == category))),
            "by_ownership": by_owner,
        }
    _, overlaps = _overlay_layer(catalog, "nrp-approved_land", proposal, as_of, zone, 1.0)
    compliance = planning_compliance(catalog, mapping(proposal.geometry), as_of=as_of)
    control = [
        layer
        for layer in compliance["layers"]
        if layer["layer"] in ("nrp-farmland_protection", "nrp-eco_redline", "nrp-urban_boundary")
        and layer.get("verdict") not in (None, "compliant")
    ]
    cultivated = classes["耕地"]["total"]
    return {
        "proposal": {
            "source": proposal.source,
            "area": {"ellipsoidal": _area(total.ellipsoidal), "planar": _area(total.planar)},
            "gk_zone": zone.number,
        },
        "as_of": str(as_of),
        "landuse_version": landuse_layer.as_of(as_of).version,
        "boundary": boundary_checks(proposal),
        "classes": classes,
        "ownership_source_m2": {k: round(v, 2) for k, v in ownership_sources.items()},
        "farmland_balance": {
            "cultivated_taken": cultivated,
            "to_supplement": cultivated,
            "rule": "占补平衡：补充耕地数量不少于占用耕地",
        },
        "approved_overlaps": [
            {
                "id": p.feature_id,
                "批准文号": p.attributes.get("批准文号"),
                "area": _area(p.ellipsoidal),
            }
            for p in overlaps.kept()
        ],
        "control_line_conflicts": control,
        "verdict": "conflict"
        if (overlaps.kept() or any(c["verdict"] == "conflict" for c in control))
        else ("needs_review" if control else "compliant"),
    }


def _ownership_split(piece, parcels: gpd.GeoDataFrame | None, zone):
    """(ownership, m², source) parts of a piece: the cadastre where it has parcels, the
    land survey's QSXZ for the rest."""
    from shikong.spatial.area import ellipsoidal_area_m2

    remaining = piece.geometry
    out = []
    if parcels is not None and len(parcels):
        inside = overlay(piece.geometry, parcels, attributes=["unit_code"], zone=zone)
        for p in inside.kept():
            out.append(
                (
                    _ownership_of_code(p.attributes.get("unit_code", "")),
                    p.ellipsoidal.m2,
                    "cadastre",
                )
            )
            remaining = remaining.difference(p.geometry)
    remaining = polygonal(remaining)
    if not remaining.is_empty:
        m2 = ellipsoidal_area_m2(remaining)
        if m2 > 0:
            out.append((_ownership_of_qsxz(piece.attributes.get("QSXZ")), m2, "land survey"))
    return out


# -- area by class -------------------------------------------------------------------
def area_by_class(
    catalog: Catalog,
    region_input: Any,
    collection: str = "nrp-landuse",
    class_field: str = "DLBM",
    level: str = "class",
    as_of: Any = None,
) -> dict[str, Any]:
    """Composition of a region by a layer's classes, in m², 公顷 and 亩.

    ``level`` is ``class`` (the code), ``first`` (two-digit first level) or ``group``
    (三大类) for land-use codes.
    """
    if level not in ("class", "first", "group"):
        raise InputError("level", f"{level!r} is not class, first or group")
    region = load_proposal(catalog, region_input)
    layer, frame = _layer_frame(catalog, collection, region, as_of)
    if class_field not in frame.columns:
        raise InputError(
            "class_field",
            f"{collection} has no field {class_field!r}; fields: "
            f"{', '.join(c for c in frame.columns if c != 'geometry')}",
        )
    result = overlay(region.geometry, frame, id_field=_id_field(layer))
    group_of, group_names = _land_groups()
    names = load_config("land_classes")
    sums: dict[str, float] = {}
    for piece in result.kept():
        code = str(piece.attributes.get(class_field))
        key = {
            "class": code,
            "first": code[:2],
            "group": group_names.get(group_of.get(code, ""), "未知"),
        }[level]
        sums[key] = sums.get(key, 0.0) + piece.ellipsoidal.m2
    total = measure(region.geometry)
    rows = []
    for key, m2 in sorted(sums.items(), key=lambda kv: -kv[1]):
        name = (
            names["classes"].get(key, {}).get("name")
            if level == "class"
            else names["first_level"].get(key)
            if level == "first"
            else key
        )
        rows.append(
            {
                "class": key,
                "name": name,
                **_area(Area(m2)),
                "share": round(m2 / total.ellipsoidal.m2, 6),
            }
        )
    covered = sum(sums.values())
    return {
        "layer": layer.id,
        "version": layer.as_of(as_of or date.today().isoformat()).version
        if as_of
        else layer.current.version,
        "level": level,
        "region_area": _area(total.ellipsoidal),
        "covered": _area(Area(covered)),
        "classes": rows,
    }
