"""OGC service exceptions: the XML answers WMS and WMTS clients parse, with an HTTP 4xx.

WMS 1.3.0 answers a ``ServiceExceptionReport`` (namespace ``http://www.opengis.net/ogc``),
WMS 1.1.1 the same without a namespace, WMTS 1.0.0 an OWS 1.1 ``ExceptionReport``. QGIS,
GDAL and OWSLib read the ``code``/``exceptionCode`` and the text, so both name the problem
(a layer the caller may not see is ``LayerNotDefined``, exactly as an absent one).
"""

from __future__ import annotations

import logging

from lxml import etree
from starlette.responses import Response

LOGGER = logging.getLogger("shikong.server.refused")

OGC_NS = "http://www.opengis.net/ogc"
OWS_NS = "http://www.opengis.net/ows/1.1"
STATUS = {
    "LayerNotDefined": 404,
    "OperationNotSupported": 501,
    "NoApplicableCode": 500,
}


class OwsError(Exception):
    """A refused OGC request: exception code, message, the parameter at fault."""

    def __init__(self, code: str, message: str, locator: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.locator = locator

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 400)


def _xml(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def wms_exception(error: OwsError, version: str = "1.3.0") -> Response:
    """A WMS ServiceExceptionReport (1.3.0 namespaced, 1.1.1 plain)."""
    LOGGER.info("%d %s: %s", error.status, error.code, error.message)
    if version.startswith("1.1"):
        root = etree.Element("ServiceExceptionReport", version="1.1.1")
        media = "application/vnd.ogc.se_xml"
        child = etree.SubElement(root, "ServiceException", code=error.code)
    else:
        root = etree.Element(f"{{{OGC_NS}}}ServiceExceptionReport", nsmap={None: OGC_NS})
        root.set("version", "1.3.0")
        media = "text/xml"
        child = etree.SubElement(root, f"{{{OGC_NS}}}ServiceException", code=error.code)
    if error.locator:
        child.set("locator", error.locator)
    child.text = error.message
    return Response(_xml(root), status_code=error.status, media_type=media)


def ows_exception(error: OwsError) -> Response:
    """An OWS 1.1 ExceptionReport, as WMTS 1.0.0 answers."""
    LOGGER.info("%d %s: %s", error.status, error.code, error.message)
    root = etree.Element(f"{{{OWS_NS}}}ExceptionReport", nsmap={"ows": OWS_NS})
    root.set("version", "1.0.0")
    root.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    child = etree.SubElement(root, f"{{{OWS_NS}}}Exception", exceptionCode=error.code)
    if error.locator:
        child.set("locator", error.locator)
    etree.SubElement(child, f"{{{OWS_NS}}}ExceptionText").text = error.message
    return Response(_xml(root), status_code=error.status, media_type="application/xml")
