"""Compliance, pre-check and area by class against hand-built layers with known answers.

Every layer is drawn as rectangles in Gauss-Krüger zone 38 (EPSG:4547), so the planar
truth is arithmetic; the ellipsoidal truth comes from pyproj's Geod, computed here.
"""

from __future__ import annotations

import geopandas as gpd
import pytest
from pyproj import Geod
from shapely.geometry import Polygon, box, mapping
from shapely.geometry.polygon import orient
from shikong.catalog import Catalog
from shikong.catalog.analysis import (
    ProposalError,
    area_by_class,
    land_approval_precheck,
    planning_compliance,
)

E, N = 500_000.0, 3_737_000.0  # a corner near zone 38's central meridian
GEOD = Geod(ellps="GRS80")


def gk(x0, y0, x1, y1):
    return box(E + x0, N + y0, E + x1, N + y1)


def to4490(geoms, **cols) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols, geometry=geoms, crs=4547).to_crs(4490)


def ellipsoidal(geom_4490) -> float:
    """Geod's polygon area; it sums signed rings, so orient them first (holes clockwise)."""
    return abs(GEOD.geometry_area_perimeter(orient(geom_4490, 1.0))[0])


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    root = tmp_path_factory.mktemp("city")
    cat = Catalog.open(root / "data")

    def put(layer, frame, **kw):
        path = root / f"{layer}.geojson"
        frame.to_file(path)
        cat.ingest(
            path, department=kw.pop("dept", "nrp"), layer=layer, valid_from="2020-01-01", **kw
        )

    # land use: west 0..100 m dry land (collective), east 100..200 m residential (state)
    put(
        "landuse",
        to4490(
            [gk(0, 0, 100, 200), gk(100, 0, 200, 200)], DLBM=["0103", "0701"], QSXZ=["30", "10"]
        ),
    )
    put("farmland_protection", to4490([gk(0, 0, 50, 200)], DLBM=["0103"]))
    # the red line touches the proposal's north edge only: zero area, no conflict
    put("eco_redline", to4490([gk(0, 150, 200, 250)], 类型=["水源保护"]))
    put("urban_boundary", to4490([gk(60, -50, 300, 300)], 名称=["边界"]))
    put(
        "planning_zones",
        to4490([gk(0, 0, 100, 200), gk(100, 0, 200, 200)], GHFQMC=["农田保护区", "城镇发展区"]),
    )
    # an earlier approval overlapping 20 x 40 m, and one touching by a 0.5 m² sliver
    put(
        "approved_land",
        to4490(
            [gk(130, 60, 150, 100), gk(9, 19, 10.5, 21)],
            批准文号=["豫政土〔2021〕1号", "豫政土〔2021〕2号"],
        ),
    )
    put("mining_rights", to4490([gk(1000, 1000, 1100, 1100)], 矿山名称=["远处煤矿"]))
    # a state-owned cadastral parcel inside the (collective by survey) west half
    put(
        "parcels",
        to4490([gk(20, 20, 40, 40)], unit_code=["410402001001GB00001W00000000"], state=[1]),
        dept="rer",
    )
    return cat


# proposal: x 10..190, y 20..150 with a 20 x 20 hole at x 60..80, y 60..80
SHELL = gk(10, 20, 190, 150)
HOLE = gk(60, 60, 80, 80)
PROPOSAL_GK = Polygon(SHELL.exterior.coords, [HOLE.exterior.coords])
PROPOSAL = to4490([PROPOSAL_GK]).geometry[0]
PLANAR_TOTAL = 180 * 130 - 400


def layer(report, name):
    return next(entry for entry in report["layers"] if entry["layer"] == name)


def test_compliance_areas_and_verdicts(city):
    report = planning_compliance(city, mapping(PROPOSAL), as_of="2024-01-01")
    assert report["proposal"]["area"]["planar"]["m2"] == pytest.approx(PLANAR_TOTAL, abs=0.01)
    assert report["proposal"]["area"]["ellipsoidal"]["m2"] == pytest.approx(
        ellipsoidal(PROPOSAL), rel=1e-9
    )
    farmland = layer(report, "nrp-farmland_protection")
    # x 10..50, y 20..150 minus nothing (the hole is at x 60..80): 40 x 130
    assert farmland["overlap"]["planar"]["m2"] == pytest.approx(40 * 130, abs=0.01)
    assert farmland["verdict"] == "conflict" and farmland["occupied"]
    piece_4490 = to4490([gk(10, 20, 50, 150)]).geometry[0]
    assert farmland["overlap"]["ellipsoidal"]["m2"] == pytest.approx(
        ellipsoidal(piece_4490), rel=1e-3
    )
    assert farmland["share"] == pytest.approx(40 * 130 / PLANAR_TOTAL, rel=1e-4)
    red = layer(report, "nrp-eco_redline")
    assert red["occupied"] is False or red["overlap"]["planar"]["m2"] < 0.01
    assert red["verdict"] == "compliant"  # touching along an edge is not a conflict
    urban = layer(report, "nrp-urban_boundary")
    assert urban["verdict"] == "needs_review"  # x 10..60 lies outside the boundary
    approved = layer(report, "nrp-approved_land")
    assert approved["overlap"]["planar"]["m2"] == pytest.approx(20 * 40, abs=0.01)
    assert approved["slivers_ignored"] == 1  # the 0.5 m² touch is below tolerance
    assert [f["class"] for f in approved["features"]] == ["豫政土〔2021〕1号"]
    zones = layer(report, "nrp-planning_zones")
    assert zones["verdict"] == "conflict" and "农田保护区" in zones["reason"]
    assert layer(report, "nrp-mining_rights")["verdict"] == "compliant"
    assert report["verdict"] == "conflict"
    pieces = report["overlaps"]["features"]
    assert {p["properties"]["layer"] for p in pieces} >= {"永久基本农田", "已批建设用地"}


def test_a_proposal_across_two_classes_and_two_ownerships(city):
    report = land_approval_precheck(city, mapping(PROPOSAL), as_of="2024-01-01")
    classes = report["classes"]
    # west (dry land, 0103): x 10..100 (90 m) x 130 m minus the 400 m² hole
    west = 90 * 130 - 400
    east = 90 * 130
    assert classes["耕地"]["total"]["m2"] == pytest.approx(
        ellipsoidal(
            to4490(
                [Polygon(gk(10, 20, 100, 150).exterior.coords, [HOLE.exterior.coords])]
            ).geometry[0]
        ),
        rel=1e-6,
    )
    assert classes["农用地"]["total"]["ha"] == pytest.approx(west / 1e4, abs=2e-4)
    assert classes["建设用地"]["total"]["ha"] == pytest.approx(east / 1e4, abs=2e-4)
    # the cadastre's state-owned parcel (20 x 20) turns that part of the dry land 国有
    assert classes["耕地"]["by_ownership"]["国有"]["m2"] == pytest.approx(400, rel=2e-3)
    assert classes["耕地"]["by_ownership"]["集体"]["m2"] == pytest.approx(west - 400, rel=2e-3)
    assert classes["建设用地"]["by_ownership"] == {"国有": classes["建设用地"]["total"]}
    assert classes["永久基本农田"]["total"]["m2"] == pytest.approx(40 * 130, rel=2e-3)
    assert report["farmland_balance"]["to_supplement"] == classes["耕地"]["total"]
    assert [o["批准文号"] for o in report["approved_overlaps"]] == ["豫政土〔2021〕1号"]
    assert report["boundary"]["one_zone"] and report["boundary"]["valid"]
    assert report["verdict"] == "conflict"


def test_coordinate_file_proposal_reports_declared_vs_computed(city):
    lines = [
        "[属性描述]",
        "坐标系=2000国家大地坐标系",
        "几度分带=3",
        "投影类型=高斯克吕格",
        "计量单位=米",
        "带号=38",
        "[地块坐标]",
        "5,0.2300,D01,测试地块,面,,工业用地,,@",
    ]
    corners = [
        (N + 20, E + 110),
        (N + 20, E + 190),
        (N + 120, E + 190),
        (N + 120, E + 110),
        (N + 20, E + 110),
    ]  # 80 x 100 = 8,000 m² = 0.8 ha, declared 0.23 ha
    lines += [f"J{i + 1},1,{x:.3f},{38_000_000 + y:.3f}" for i, (x, y) in enumerate(corners)]
    report = land_approval_precheck(city, "\n".join(lines) + "\n", as_of="2024-01-01")
    boundary = report["boundary"]
    assert boundary["declared_area_ha"] == 0.23
    assert boundary["computed_planar_ha"] == pytest.approx(0.8, abs=1e-4)
    assert boundary["difference_ha"] == pytest.approx(0.57, abs=1e-4)
    assert boundary["point_count"] == 5


def test_area_by_class(city):
    region = to4490([gk(0, 0, 200, 200)]).geometry[0]
    table = area_by_class(city, mapping(region))
    got = {row["class"]: row for row in table["classes"]}
    assert got["0103"]["ha"] == pytest.approx(100 * 200 / 1e4, abs=2e-4)
    assert got["0701"]["mu"] == pytest.approx(100 * 200 * 15 / 1e4, abs=0.02)
    grouped = {
        r["class"]: r for r in area_by_class(city, mapping(region), level="group")["classes"]
    }
    assert set(grouped) == {"农用地", "建设用地"}


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"type": "Point", "coordinates": [113.3, 33.7]}, "no area"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}, "outside China"),
        ("not a boundary", "neither GeoJSON nor a 坐标报盘"),
        ({"collection": "nrp-landuse", "feature": 999}, "no feature 999"),
        ({"type": "Feature", "geometry": None}, "no geometry"),
    ],
)
def test_bad_proposals(city, value, words):
    with pytest.raises(ProposalError, match=words):
        planning_compliance(city, value)


# -- the compliance map and Chinese text in figures ----------------------------------
def cjk_family() -> str:
    """The CJK font matplotlib will use; a missing one fails under CI, else skips."""
    import os

    from shikong.spatial.fonts import cjk_font

    family = cjk_font()
    if family is None:
        if os.environ.get("SHIKONG_REQUIRE_SERVICES"):
            pytest.fail("no CJK font is installed and SHIKONG_REQUIRE_SERVICES is set")
        pytest.skip("no CJK font installed (apt-get install fonts-wqy-zenhei)")
    return family


def han(text: str) -> str:
    return "".join(sorted({ch for ch in text if "\u4e00" <= ch <= "\u9fff"}))


def draw_without_missing_glyphs(fig) -> None:
    """Draw the figure; matplotlib warns "Glyph … missing from font(s)" for every box."""
    import warnings

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FigureCanvasAgg(fig).draw()
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert not missing, missing[:3]


def test_chinese_text_resolves_to_a_font_with_its_glyphs():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.font_manager import FontProperties, findfont
    from shikong.config import load as load_config
    from shikong.spatial.fonts import cjk_rc, covers

    family = cjk_family()
    names = "".join(rule["name"] for rule in load_config("compliance_rules")["layers"])
    text = "规划符合性审查 结论 合规 冲突 需复核 图例 图层 申请用地 经度 纬度 公顷 亩 " + names
    path = findfont(FontProperties(family=family), fallback_to_default=False)
    assert covers(path, han(text)), path
    with plt.rc_context({"font.family": ["DejaVu Sans"]}):  # the default: boxes, and a warning
        fig = plt.figure()
        fig.text(0.1, 0.5, text)
        with pytest.raises(AssertionError, match="missing from font"):
            draw_without_missing_glyphs(fig)
        plt.close(fig)
    with plt.rc_context({"font.family": ["DejaVu Sans"], **cjk_rc()}):
        fig = plt.figure()
        fig.text(0.1, 0.5, text + " −12.5 m²")  # Latin and the minus sign still draw
        draw_without_missing_glyphs(fig)
        plt.close(fig)


def test_a_missing_cjk_font_is_a_clear_warning():
    from shikong.spatial.fonts import CJKFontMissing, cjk_rc

    with pytest.warns(CJKFontMissing, match="empty boxes.*fonts-wqy-zenhei"):
        assert cjk_rc(probe="\U000f0000") == {}  # a private-use character no font draws


def test_compliance_map_shows_the_verdict_and_chinese_legend(city):
    import base64
    import io

    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba
    from matplotlib.text import Text
    from shapely.ops import unary_union
    from shikong.catalog.analysis import (
        VERDICT_LOOK,
        _problem_areas,
        compliance_figure,
        load_proposal,
    )
    from shikong.config import load as load_config
    from shikong.spatial.area import measure

    cjk_family()
    report = planning_compliance(city, mapping(PROPOSAL), as_of="2024-01-01", figure=True)
    png = plt.imread(io.BytesIO(base64.b64decode(report["figure_png"])))
    assert png.ndim == 3 and png.shape[0] > 400 and png.shape[1] > 600
    rules = load_config("compliance_rules")
    context = {
        r["collection"]: (
            f"{r['name']} {r['name_en']}",
            city.layer(r["collection"]).to_geodataframe(),
        )
        for r in rules["layers"]
        if not r.get("report_only")
    }
    proposal = load_proposal(city, mapping(PROPOSAL))
    fig = compliance_figure(proposal, context, report, rules)  # outside pyplot: no close
    draw_without_missing_glyphs(fig)
    texts = {t.get_text(): t for t in fig.findobj(Text) if t.get_text()}
    verdict = texts["结论 verdict：冲突 conflict"]  # the test city's proposal conflicts
    assert verdict.get_bbox_patch().get_facecolor() == to_rgba(VERDICT_LOOK["conflict"][2])
    for line in (
        "永久基本农田 permanent basic farmland：冲突 conflict",
        "生态保护红线 ecological red line：合规 compliant",
        "城镇开发边界 urban development boundary：需复核 needs review",
        "国土空间规划分区 planning zones：冲突 conflict",
        "已批建设用地 approved construction land：冲突 conflict",
        "采矿权 mining rights：合规 compliant",
        "冲突区域 conflict area",
        "需复核区域 needs review area",
        "申请用地 proposal",
    ):
        assert line in texts, sorted(texts)
    assert "规划符合性审查 Planning compliance" in texts
    # what is hatched: the 农田保护区 half and the earlier approval (conflict), and the
    # strip x 10..60 outside the urban boundary (needs review), in GK metres
    areas = _problem_areas(proposal, report, rules)
    conflict = unary_union([g for g, v in areas if v == "conflict"])
    review = unary_union([g for g, v in areas if v == "needs_review"])
    assert measure(conflict).planar.m2 == pytest.approx(90 * 130 - 400 + 20 * 40, abs=0.05)
    assert measure(review).planar.m2 == pytest.approx(50 * 130, abs=0.05)
