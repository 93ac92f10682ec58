"""OGC API Processes: the platform's questions as pygeoapi processors.

Each processor declares its inputs (OGC process description), checks them, and calls a
library function of :mod:`shikong.catalog`; the geometry and the rules live there.
Errors in the inputs are raised as :class:`ProcessorExecuteError` with a message naming
the input; pygeoapi answers them 400.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError
from shikong.catalog import Catalog
from shikong.catalog.policy import Access
from shikong.catalog.view import CatalogView
from shikong.spatial.errors import ShikongError

GEOMETRY_INPUT = {
    "title": "Proposal boundary",
    "description": "GeoJSON geometry, Feature or FeatureCollection (CRS84 or EPSG:4490); "
    '坐标报盘 text; or {"collection": id, "feature": id}',
    "schema": {"oneOf": [{"type": "object"}, {"type": "string"}]},
    "minOccurs": 1,
    "maxOccurs": 1,
}
AS_OF_INPUT = {
    "title": "As of",
    "description": "Date the layers are read as of (default today)",
    "schema": {"type": "string", "format": "date"},
    "minOccurs": 0,
    "maxOccurs": 1,
}
JSON_OUTPUT = {
    "report": {
        "title": "Report",
        "schema": {"type": "object", "contentMediaType": "application/json"},
    }
}


def metadata(pid: str, title: dict, description: dict, inputs: dict) -> dict[str, Any]:
    return {
        "version": "1.0.0",
        "id": pid,
        "title": title,
        "description": description,
        "jobControlOptions": ["sync-execute", "async-execute"],
        "keywords": ["shikong", "国土空间规划", "土地报批", "不动产登记"],
        "links": [],
        "inputs": inputs,
        "outputs": JSON_OUTPUT,
        "example": {"inputs": {}},
    }


@lru_cache(maxsize=8)
def catalog_for(data_root: str) -> Catalog:
    """One Catalog per data directory: pygeoapi builds a processor per request, and opening
    the index (schema check, connections) each time is work the answer does not need."""
    return Catalog(Path(data_root))


class ShikongProcessor(BaseProcessor):
    """Common input checking and error mapping for the platform's processes.

    The server binds each processor to the caller's view (``visible``, ``masks``): its
    catalog holds only the collections the caller may read, so an input naming a hidden
    collection, or a layer the process reads on its own, is absent for it. It writes only
    what a view lets through (a layer derived from ``writable`` collections: see
    :mod:`shikong.catalog.view`). A processor built without a view sees nothing.
    """

    METADATA: ClassVar[dict[str, Any]] = {}
    READS: ClassVar[tuple[str, ...]] = ()  # collections without which it is not listed
    READS_UNMASKED: ClassVar[tuple[str, ...]] = ()  # ... and whose personal data it needs

    def __init__(self, processor_def: dict[str, Any]) -> None:
        super().__init__(processor_def, self.METADATA)
        self.data_root = processor_def["data_root"]
        self.visible = frozenset(processor_def.get("visible", ()))
        self.writable = frozenset(processor_def.get("writable", ()))
        self.masks: dict[str, dict[str, str]] = processor_def.get("masks", {})
        self.catalog = CatalogView(catalog_for(self.data_root), self.visible, self.writable)

    def set_job_id(self, job_id: str) -> None:
        self.job_id = job_id

    def report(self, percent: float, message: str) -> None:
        """Progress into the job status; raises JobCancelled once the owner dismissed it."""
        manager = getattr(self, "manager", None)
        if manager is not None and hasattr(manager, "report"):
            manager.report(getattr(self, "job_id", None), percent, message)

    def grants_personal_data(self, collection: str) -> bool:
        return collection in self.visible and not self.masks.get(collection)

    def required(self, data: dict[str, Any], name: str) -> Any:
        if data.get(name) in (None, ""):
            raise ProcessorExecuteError(f"missing input {name!r}")
        return data[name]

    def check_inputs(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ProcessorExecuteError("inputs must be an object")
        unknown = sorted(set(data) - set(self.METADATA["inputs"]))
        if unknown:
            raise ProcessorExecuteError(
                f"unknown inputs {', '.join(unknown)}; expected "
                f"{', '.join(self.METADATA['inputs'])}"
            )
        return data

    def execute(self, data: dict[str, Any], outputs: Any = None) -> tuple[str, Any]:
        data = self.check_inputs(data)
        try:
            return "application/json", self.run(data)
        except ShikongError as exc:
            raise ProcessorExecuteError(str(exc)) from exc
        except (TypeError, ValueError, KeyError) as exc:
            raise ProcessorExecuteError(f"invalid input: {exc}") from exc

    def run(self, data: dict[str, Any]) -> Any:
        raise NotImplementedError


class PlanningComplianceProcessor(ShikongProcessor):
    METADATA: ClassVar[dict[str, Any]] = metadata(
        "planning-compliance",
        {"en": "Planning compliance check", "zh": "国土空间规划符合性审查"},
        {
            "en": "Overlay a proposal on the control lines and planning layers; verdict per "
            "rule and overall, with overlap areas (ellipsoidal and Gauss-Krüger planar; "
            "m², 公顷, 亩), the overlap pieces and a map figure.",
            "zh": "将项目红线与三区三线、规划分区等叠加分析，给出各规则结论与总体结论",
        },
        {
            "proposal": GEOMETRY_INPUT,
            "as_of": AS_OF_INPUT,
            "figure": {
                "title": "Include a PNG map figure (base64)",
                "schema": {"type": "boolean"},
                "minOccurs": 0,
                "maxOccurs": 1,
            },
        },
    )

    def run(self, data: dict[str, Any]) -> Any:
        from shikong.catalog.analysis import planning_compliance

        return planning_compliance(
            self.catalog,
            self.required(data, "proposal"),
            as_of=data.get("as_of"),
            figure=bool(data.get("figure")),
        )


class LandApprovalPrecheckProcessor(ShikongProcessor):
    READS = ("nrp-landuse",)
    METADATA: ClassVar[dict[str, Any]] = metadata(
        "land-approval-precheck",
        {"en": "Land approval pre-check", "zh": "建设用地报批预审"},
        {
            "en": "Land classes taken (agricultural, of which cultivated and permanent basic "
            "farmland; construction; unused), by ownership; farmland balance; overlaps "
            "with earlier approvals; control-line conflicts; boundary checks.",
            "zh": "三大类面积及权属、占补平衡、重复报批、三线冲突与界址检查",
        },
        {"proposal": GEOMETRY_INPUT, "as_of": AS_OF_INPUT},
    )

    def run(self, data: dict[str, Any]) -> Any:
        from shikong.catalog.analysis import land_approval_precheck

        return land_approval_precheck(
            self.catalog, self.required(data, "proposal"), as_of=data.get("as_of")
        )


class AreaByClassProcessor(ShikongProcessor):
    METADATA: ClassVar[dict[str, Any]] = metadata(
        "area-by-class",
        {"en": "Area by class", "zh": "分类面积统计"},
        {
            "en": "Composition of a region by a layer's classes (default: current land use by "
            "GB/T 21010 code), in m², 公顷 and 亩.",
            "zh": "按地类统计区域面积",
        },
        {
            "region": GEOMETRY_INPUT,
            "as_of": AS_OF_INPUT,
            "collection": {
                "schema": {"type": "string", "default": "nrp-landuse"},
                "minOccurs": 0,
                "maxOccurs": 1,
            },
            "class_field": {
                "schema": {"type": "string", "default": "DLBM"},
                "minOccurs": 0,
                "maxOccurs": 1,
            },
            "level": {
                "schema": {"type": "string", "enum": ["class", "first", "group"]},
                "minOccurs": 0,
                "maxOccurs": 1,
            },
        },
    )

    def run(self, data: dict[str, Any]) -> Any:
        from shikong.catalog.analysis import area_by_class

        collection = str(data.get("collection", "nrp-landuse"))
        class_field = str(data.get("class_field", "DLBM"))
        if class_field in self.masks.get(collection, {}):
            raise ProcessorExecuteError(
                f"class_field {class_field!r} is personal data of {collection}; grouping by "
                "it needs the personal-data grant"
            )
        return area_by_class(
            self.catalog,
            self.required(data, "region"),
            collection=collection,
            class_field=class_field,
            level=data.get("level", "class"),
            as_of=data.get("as_of"),
        )


@lru_cache(maxsize=8)
def registry_for(data_root: str):
    """One PropertyRegistry per data directory: it caches the parcels per layer version."""
    from shikong.catalog.registry import PropertyRegistry

    return PropertyRegistry(catalog_for(data_root))


CODE_INPUT = {
    "title": "Unit code",
    "description": "不动产单元代码, 28 characters (GB/T 37346)",
    "schema": {"type": "string", "minLength": 28, "maxLength": 28},
    "minOccurs": 1,
    "maxOccurs": 1,
}


class RegistryProcessor(ShikongProcessor):
    """Registry questions; owners' personal data stays masked unless the caller's view
    grants it (the grant is not an input a caller can set)."""

    READS = ("rer-parcels",)

    @property
    def registry(self):
        if "rer-parcels" not in self.visible:
            raise ProcessorExecuteError("no layer 'rer-parcels' in the catalog")
        return registry_for(self.data_root)

    @property
    def personal(self) -> bool:
        return self.grants_personal_data("rer-parcels")


class ParcelAtPointProcessor(RegistryProcessor):
    METADATA: ClassVar[dict[str, Any]] = metadata(
        "parcel-at-point",
        {"en": "Parcels at a point", "zh": "按坐标查询宗地"},
        {
            "en": "The parcel records covering a lon/lat (both on a shared boundary), valid on "
            "a date (default: current).",
            "zh": "查询坐标所在宗地",
        },
        {
            "lon": {"schema": {"type": "number"}, "minOccurs": 1, "maxOccurs": 1},
            "lat": {"schema": {"type": "number"}, "minOccurs": 1, "maxOccurs": 1},
            "as_of": AS_OF_INPUT,
        },
    )

    def run(self, data: dict[str, Any]) -> Any:
        lon, lat = self.required(data, "lon"), self.required(data, "lat")
        if not all(isinstance(v, int | float) for v in (lon, lat)):
            raise ProcessorExecuteError("lon and lat must be numbers (degrees)")
        return self.registry.at_point(
            float(lon), float(lat), as_of=data.get("as_of"), grants_personal_data=self.personal
        )


class ParcelByCodeProcessor(RegistryProcessor):
    METADATA: ClassVar[dict[str, Any]] = metadata(
        "parcel-by-code",
        {"en": "Parcel by unit code", "zh": "按不动产单元代码查询"},
        {
            "en": "The record(s) of a 28-character unit code, optionally as of a date.",
            "zh": "按不动产单元代码查询宗地及权利",
        },
        {"code": CODE_INPUT, "as_of": AS_OF_INPUT},
    )

    def run(self, data: dict[str, Any]) -> Any:
        return self.registry.by_code(
            str(self.required(data, "code")),
            as_of=data.get("as_of"),
            grants_personal_data=self.personal,
        )


class ParcelHistoryProcessor(RegistryProcessor):
    METADATA: ClassVar[dict[str, Any]] = metadata(
        "parcel-history",
        {"en": "Parcel history", "zh": "宗地变更历史"},
        {
            "en": "The lineage of a parcel: splits, merges and boundary changes, with every "
            "record involved.",
            "zh": "宗地的分割、合并与界址变更历史",
        },
        {"code": CODE_INPUT},
    )

    def run(self, data: dict[str, Any]) -> Any:
        return self.registry.history(
            str(self.required(data, "code")), grants_personal_data=self.personal
        )


class PropertyByOwnerProcessor(RegistryProcessor):
    READS_UNMASKED = ("rer-parcels",)  # searching by a person needs the personal-data grant
    METADATA: ClassVar[dict[str, Any]] = metadata(
        "property-by-owner",
        {"en": "Property by owner", "zh": "按权利人查询不动产"},
        {
            "en": "A person's property records (restricted; always audited). Give an ID number "
            "or an exact name.",
            "zh": "按权利人姓名或证件号查询（受限操作）",
        },
        {
            "owner_name": {"schema": {"type": "string"}, "minOccurs": 0, "maxOccurs": 1},
            "id_number": {"schema": {"type": "string"}, "minOccurs": 0, "maxOccurs": 1},
            "as_of": AS_OF_INPUT,
        },
    )

    def run(self, data: dict[str, Any]) -> Any:
        return self.registry.by_owner(
            owner_name=data.get("owner_name"),
            id_number=data.get("id_number"),
            as_of=data.get("as_of"),
            grants_personal_data=self.personal,
        )


class MineRemediationProcessor(ShikongProcessor):
    READS = ("nrp-rs_mining", "nrp-mining_rights")
    METADATA: ClassVar[dict[str, Any]] = {
        **metadata(
            "mine-remediation-assessment",
            {"en": "Mine remediation assessment", "zh": "矿山生态修复评估"},
            {
                "en": "NDVI before, after and its change per mining right from two image dates; "
                "disturbed and recovered hectares; the change written back as a derived "
                "layer. Runs on Dask; async by default.",
                "zh": "矿区植被恢复评估",
            },
            {
                "imagery": {
                    "schema": {"type": "string", "default": "nrp-rs_mining"},
                    "minOccurs": 0,
                    "maxOccurs": 1,
                },
                "mines": {
                    "schema": {"type": "string", "default": "nrp-mining_rights"},
                    "minOccurs": 0,
                    "maxOccurs": 1,
                },
                "before": {"schema": {"type": "string"}, "minOccurs": 0, "maxOccurs": 1},
                "after": {"schema": {"type": "string"}, "minOccurs": 0, "maxOccurs": 1},
            },
        ),
        "jobControlOptions": ["async-execute"],
    }

    def run(self, data: dict[str, Any]) -> Any:
        from shikong.catalog.remediation import mine_remediation_assessment
        from shikong.spatial.compute import get_client

        imagery = str(data.get("imagery", "nrp-rs_mining"))
        # the change raster is written back into the imagery's department: only a caller
        # who may write there (its owner or a write grant) adds a layer to it
        may_write = imagery in self.writable
        report = mine_remediation_assessment(
            self.catalog,
            imagery=imagery,
            mines=data.get("mines", "nrp-mining_rights"),
            before=data.get("before"),
            after=data.get("after"),
            write_derived=may_write,
            progress=self.report,
            client=get_client(),
        )
        if not may_write:
            report["derived"] = None
            report["derived_note"] = (
                f"change raster not written back: writing into {imagery.split('-')[0]} needs "
                "its owner department or a write grant"
            )
        return report


class ZonalStatisticsProcessor(ShikongProcessor):
    METADATA: ClassVar[dict[str, Any]] = {
        **metadata(
            "zonal-statistics",
            {"en": "Zonal statistics", "zh": "分区统计"},
            {
                "en": "Statistics of a raster layer inside each polygon of a vector layer "
                "(pixel-centre rule), computed block by block on Dask. Each row is a zone: "
                "`id` is the zone layer's id field (`id_field`, e.g. 许可证号), `name` its "
                "name field (`name_field`: name/名称, else *名称, *_name, *MC; null if none).",
                "zh": "按多边形统计栅格；每行以图层标识字段（id）标注，并带名称字段（name）",
            },
            {
                "raster": {"schema": {"type": "string"}, "minOccurs": 1, "maxOccurs": 1},
                "zones": {"schema": {"type": "string"}, "minOccurs": 1, "maxOccurs": 1},
                "band": {
                    "schema": {"type": "integer", "default": 1},
                    "minOccurs": 0,
                    "maxOccurs": 1,
                },
                "stats": {
                    "schema": {"type": "array", "items": {"type": "string"}},
                    "minOccurs": 0,
                    "maxOccurs": 1,
                },
                "percentiles": {
                    "schema": {"type": "array", "items": {"type": "number"}},
                    "minOccurs": 0,
                    "maxOccurs": 1,
                },
            },
        ),
        "jobControlOptions": ["async-execute"],
    }

    def run(self, data: dict[str, Any]) -> Any:
        from shikong.spatial.compute import get_client
        from shikong.spatial.rasterjobs import zonal_stats

        raster = self.catalog.layer(str(self.required(data, "raster"))).to_xarray()
        band = int(data.get("band", 1))
        if not 1 <= band <= raster.sizes.get("band", 1):
            raise ProcessorExecuteError(f"band {band} does not exist")
        zones_layer = self.catalog.layer(str(self.required(data, "zones")))
        zones = zones_layer.to_geodataframe()
        id_field = zones_layer.current.id_field
        table = zonal_stats(
            raster.isel(band=[band - 1]),
            zones,
            stats=tuple(data.get("stats", ("count", "mean", "min", "max"))),
            percentiles=tuple(data.get("percentiles", ())),
            id_field=id_field,
            client=get_client(),
            progress=lambda done, total: self.report(
                5 + 90 * done / total, f"{done}/{total} block tasks"
            ),
        )
        return {
            "raster": data["raster"],
            "zones": data["zones"],
            "id_field": id_field,
            "name_field": table.attrs["name_field"],
            "rows": _zone_rows(table),
        }


def _zone_rows(table) -> list[dict[str, Any]]:
    """Rows keyed ``id`` and ``name`` (as mine-remediation's are), then the statistics:
    the same keys whatever the zone layer calls its id and name fields."""
    name_field = table.attrs["name_field"]
    names = table[name_field].tolist() if name_field else [None] * len(table)
    values = json.loads(table.drop(columns=name_field or []).to_json(orient="records"))
    return [
        {"id": zone, "name": name, **stats}
        for zone, name, stats in zip(table.index.tolist(), names, values, strict=True)
    ]


PROCESSORS = {
    "planning-compliance": PlanningComplianceProcessor,
    "land-approval-precheck": LandApprovalPrecheckProcessor,
    "area-by-class": AreaByClassProcessor,
    "parcel-at-point": ParcelAtPointProcessor,
    "parcel-by-code": ParcelByCodeProcessor,
    "parcel-history": ParcelHistoryProcessor,
    "property-by-owner": PropertyByOwnerProcessor,
    "mine-remediation-assessment": MineRemediationProcessor,
    "zonal-statistics": ZonalStatisticsProcessor,
}


def process_resources(data_root: Path) -> dict[str, Any]:
    """pygeoapi resources for every processor, bound to one data directory."""
    return {
        pid: {
            "type": "process",
            "processor": {
                "name": f"{cls.__module__}.{cls.__name__}",
                "id": pid,
                "data_root": str(data_root),
            },
        }
        for pid, cls in PROCESSORS.items()
    }


def process_allowed(resource: dict[str, Any], access: Access) -> bool:
    """Whether a process is listed for a view: every collection it needs is visible."""
    cls = PROCESSORS.get(resource["processor"].get("id", ""))
    if cls is None:
        return False
    return all(c in access.visible for c in cls.READS) and all(
        access.unmasked(c) for c in cls.READS_UNMASKED
    )


def bind_process(resource: dict[str, Any], access: Access) -> dict[str, Any]:
    """The process resource bound to a view: what its catalog holds and masks."""
    processor = {
        **resource["processor"],
        "visible": sorted(access.visible),
        "writable": sorted(access.writable),
        "masks": {cid: access.masked_fields(cid) for cid, _ in access.masks},
    }
    return {**resource, "processor": processor}


ALWAYS_AUDITED = frozenset({"property-by-owner"})  # DOMAIN.md: search by person


def process_reads(resource: dict[str, Any], inputs: Any, known: Any) -> list[str]:
    """Collections an execution reads: the process's own layers and any input naming one."""
    cls = PROCESSORS.get(resource["processor"].get("id", ""))
    reads = list(cls.READS) if cls else []

    def walk(value: Any) -> None:
        if isinstance(value, str) and value in known and value not in reads:
            reads.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(inputs)
    return reads


def wants_async(pid: str, prefer: str) -> bool:
    """Whether an execution would run as a job (asked for, or the only mode offered)."""
    cls = PROCESSORS.get(pid)
    if cls is None:
        return False
    return "respond-async" in prefer or "sync-execute" not in cls.METADATA["jobControlOptions"]
