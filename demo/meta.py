"""What the catalog should say about each demo layer: titles, classification, keywords.

Kept as a table apart from the code that writes the files, so wording can change without
touching the generator. Descriptions may hold ``{placeholders}`` filled per delivery.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerMeta:
    title: str
    title_en: str
    classification: str  # public | shared | restricted
    keywords: tuple[str, ...]
    description: str


_IOT = ("物联网", "IoT")

LAYERS: dict[tuple[str, str], LayerMeta] = {
    ("nrp", "landuse"): LayerMeta(
        "土地利用现状",
        "Current land use",
        "shared",
        ("土地利用现状", "地类图斑", "国土变更调查", "land use", "GB/T 21010"),
        "{year}年度国土变更调查地类图斑（BSM/DLBM/DLMC/QSXZ/ZLDWMC/TBMJ）。{detail}",
    ),
    ("nrp", "farmland_protection"): LayerMeta(
        "永久基本农田",
        "Permanent basic farmland",
        "shared",
        ("永久基本农田", "三区三线", "耕地保护", "farmland protection", "control line"),
        "三区三线划定的永久基本农田保护图斑，均位于耕地图斑内。",
    ),
    ("nrp", "eco_redline"): LayerMeta(
        "生态保护红线",
        "Ecological protection red line",
        "public",
        ("生态保护红线", "三区三线", "水源涵养", "ecological red line", "control line"),
        "西部山区水源涵养区及水库饮用水水源地的生态保护红线。",
    ),
    ("nrp", "urban_boundary"): LayerMeta(
        "城镇开发边界",
        "Urban development boundary",
        "public",
        ("城镇开发边界", "三区三线", "urban development boundary", "control line"),
        "中心城区城镇开发边界。",
    ),
    ("nrp", "planning_zones"): LayerMeta(
        "国土空间规划分区",
        "Territorial spatial planning zones",
        "public",
        ("国土空间规划", "规划分区", "一张图", "spatial planning", "zoning"),
        "市级国土空间总体规划（2021-2035年）规划分区，无缝覆盖全市域。",
    ),
    ("nrp", "approved_land"): LayerMeta(
        "已批建设用地",
        "Approved construction land",
        "shared",
        ("已批建设用地", "建设用地报批", "批文", "land approval", "construction land"),
        "省政府批准的建设用地范围，含批准文号、批准日期、用地面积及占用耕地面积。",
    ),
    ("nrp", "approval_submission"): LayerMeta(
        "建设用地报批坐标报盘",
        "Land approval coordinate submission",
        "shared",
        ("坐标报盘", "建设用地报批", "界址点", "coordinate file", "land approval"),
        "{project}报批时提交的界址点坐标文件（GBK编码，X为北坐标，Y含38带号），后经{number}批准。",
    ),
    ("nrp", "mining_rights"): LayerMeta(
        "采矿权",
        "Mining rights",
        "shared",
        ("采矿权", "矿业权", "煤矿", "mining rights", "coal"),
        "东南部煤矿区采矿权范围，含许可证号、采矿权人、有效期与状态（一处已注销闭坑）。",
    ),
    ("nrp", "mine_remediation"): LayerMeta(
        "矿山生态修复项目",
        "Mine remediation projects",
        "shared",
        ("矿山生态修复", "闭坑矿山", "土地复垦", "mine remediation", "reclamation"),
        "闭坑煤矿工业场地生态修复工程范围，2022年竣工，已复垦为乔木林地。",
    ),
    ("nrp", "dem"): LayerMeta(
        "数字高程模型",
        "Digital elevation model",
        "public",
        ("数字高程模型", "DEM", "高程", "elevation", "terrain"),
        "全市域数字高程模型（米，1985国家高程基准），西部山区高、东部平原低。",
    ),
    ("nrp", "rs_mining"): LayerMeta(
        "矿区遥感影像",
        "Mining area imagery",
        "shared",
        ("遥感影像", "红光", "近红外", "NDVI", "remote sensing", "mining"),
        "{year}年9月煤矿区多光谱影像：波段1红光、波段2近红外，反射率×10000（uint16）。",
    ),
    ("rer", "parcels"): LayerMeta(
        "不动产宗地",
        "Cadastral parcels",
        "restricted",
        ("不动产登记", "宗地", "不动产单元代码", "cadastre", "parcels", "property"),
        "中心城区宗地登记信息：不动产单元代码、权利人及身份证号（个人信息）、抵押查封状态，"
        "以及分割、合并、界址调整的历史记录（权属状态2为历史）。",
    ),
    ("hud", "buildings"): LayerMeta(
        "房屋建筑",
        "Buildings",
        "shared",
        ("房屋建筑", "房屋普查", "楼层", "buildings", "housing"),
        "中心城区房屋建筑基底，含层数、用途、结构和建成年份。",
    ),
    ("tra", "roads"): LayerMeta(
        "道路",
        "Roads",
        "public",
        ("道路", "国道", "省道", "路网", "roads", "transport"),
        "国道、省道、县道及中心城区主次干道中心线。",
    ),
    ("wat", "rivers"): LayerMeta(
        "河流",
        "Rivers",
        "public",
        ("河流", "水系", "rivers", "hydrography"),
        "{river}干流及其支流中心线。",
    ),
    ("wat", "reservoirs"): LayerMeta(
        "水库",
        "Reservoirs",
        "public",
        ("水库", "水面", "reservoirs", "water"),
        "水库正常蓄水位水面范围，含汛限水位与库容。",
    ),
    ("wat", "water_level_sensors"): LayerMeta(
        "水位监测站",
        "Water level gauges",
        "shared",
        ("水位", "水文监测", *_IOT, "water level"),
        "河道与水库水位监测站；warning_level为警戒（汛限）水位，米，1985国家高程基准。",
    ),
    ("wat", "water_level_readings"): LayerMeta(
        "水位监测数据",
        "Water level readings",
        "shared",
        ("水位", "时间序列", *_IOT, "water level", "time series"),
        "水位站10分钟水位（米），{start}起，北京时间；含少量超出有效范围的传感器异常值。",
    ),
    ("eco", "air_quality_stations"): LayerMeta(
        "空气质量监测站",
        "Air quality stations",
        "public",
        ("空气质量", "PM2.5", "AQI", *_IOT, "air quality"),
        "空气质量自动监测站，监测PM2.5（µg/m³）与AQI。",
    ),
    ("eco", "air_quality_readings"): LayerMeta(
        "空气质量监测数据",
        "Air quality readings",
        "public",
        ("空气质量", "PM2.5", "AQI", "时间序列", *_IOT, "air quality", "time series"),
        "逐小时PM2.5与AQI，{start}起，北京时间；parameter列区分pm25与aqi。",
    ),
    ("agr", "farmland_quality"): LayerMeta(
        "耕地质量等别",
        "Farmland quality grades",
        "shared",
        ("耕地质量", "耕地等别", "farmland quality", "agriculture"),
        "耕地质量等级评价（1等最好、10等最差），覆盖2023年耕地图斑。",
    ),
    ("frs", "forest_stands"): LayerMeta(
        "森林资源小班",
        "Forest stands",
        "shared",
        ("森林资源", "小班", "林地", "forest inventory", "stands"),
        "西部山区森林资源二类调查小班，含优势树种、郁闭度、起源和林种。",
    ),
    ("ema", "subsidence_points"): LayerMeta(
        "采煤沉陷监测点",
        "Subsidence monitoring points",
        "shared",
        ("地面沉降", "采煤沉陷", "GNSS", *_IOT, "subsidence", "mining"),
        "煤矿区GNSS地面沉降监测点；累计沉降超过warning_level或速率超过10 mm/d需预警。",
    ),
    ("ema", "subsidence_readings"): LayerMeta(
        "沉降监测数据",
        "Subsidence readings",
        "shared",
        ("地面沉降", "时间序列", *_IOT, "subsidence", "time series"),
        "逐小时累计沉降量（毫米），{start}起，北京时间。",
    ),
    ("met", "weather_stations"): LayerMeta(
        "气象自动站",
        "Weather stations",
        "public",
        ("气象", "雨量", *_IOT, "weather", "rainfall"),
        "气象自动站（雨量）。",
    ),
    ("met", "rainfall_readings"): LayerMeta(
        "降水观测数据",
        "Rainfall readings",
        "public",
        ("降水", "雨量", "时间序列", *_IOT, "rainfall", "time series"),
        "10分钟降水量（毫米），{start}起，北京时间。",
    ),
    ("met", "rainfall_grid"): LayerMeta(
        "逐小时降水格点",
        "Hourly gridded rainfall",
        "public",
        ("降水", "格点", "数据立方体", "rainfall", "datacube", "NetCDF"),
        "0.02°格点逐小时降水量（毫米），NetCDF变量precipitation（坐标系见spatial_ref），"
        "时间为UTC，{start}起。",
    ),
    ("urb", "manhole_sensors"): LayerMeta(
        "井盖监测",
        "Manhole cover sensors",
        "shared",
        ("井盖", "城市管理", "倾角", *_IOT, "manhole"),
        "中心城区雨水井盖倾角传感器；倾角超过5度视为井盖移位。",
    ),
    ("urb", "manhole_readings"): LayerMeta(
        "井盖倾角数据",
        "Manhole cover readings",
        "shared",
        ("井盖", "倾角", "时间序列", *_IOT, "manhole", "time series"),
        "10分钟井盖倾角（度），{start}起，北京时间。",
    ),
    ("sta", "population_grid"): LayerMeta(
        "人口网格",
        "Population grid",
        "public",
        ("人口", "网格", "常住人口", "population", "grid"),
        "{cell}米格网常住人口数。",
    ),
    ("psb", "camera_sites"): LayerMeta(
        "视频监控点位",
        "Video surveillance sites",
        "restricted",
        ("视频监控", "治安", "点位", "cameras", "public security"),
        "视频监控点位表，x/y为CGCS2000 3度带38带平面坐标（不含带号，EPSG:4547）。",
    ),
}
