"""Who may see, edit and unmask which collection: the access policy as data.

The platform's rule (DOMAIN.md): a collection is ``public`` (anyone), ``shared`` (any
authenticated department) or ``restricted`` (its owner department and those it grants).
Grants and personal-data fields live in ``config/access_policy.yaml`` (or a data
directory's own ``access_policy.yaml``). :meth:`Policy.access` turns a caller into an
:class:`Access`: the sets of collections it may read, write and see unmasked. The server
builds each caller's API from that, so a check cannot be forgotten on one path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from shikong.config import load as load_config
from shikong.spatial.errors import InputError

from .masking import mask_id_number, mask_name

RIGHTS = ("read", "write", "personal-data")
ROLES = ("user", "auditor", "gateway", "admin")
MASK_RULES: dict[str, Callable[[str | None], str | None]] = {
    "name": mask_name,
    "id_number": mask_id_number,
}
POLICY_FILE = "access_policy.yaml"


@dataclass(frozen=True)
class Caller:
    """Who is asking. Anonymous callers (no department) are the public.

    ``grants`` are (collection id, right) pairs a trusted token adds to the policy's;
    ``role`` is ``user``, ``auditor`` (also reads the audit log), ``gateway`` (an IoT
    gateway that may post readings of any sensor) or ``admin`` (decides its department's
    access requests, :mod:`shikong.catalog.sharing`).
    """

    user: str | None = None
    department: str | None = None
    role: str = "user"
    grants: frozenset[tuple[str, str]] = frozenset()
    key_id: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.department is None

    @property
    def label(self) -> str:
        if self.anonymous:
            return "anonymous"
        return f"{self.department}/{self.user or '-'}"


ANONYMOUS = Caller()


@dataclass(frozen=True)
class CollectionMeta:
    """What the policy needs to know of a collection."""

    id: str
    department: str
    classification: str


@dataclass(frozen=True)
class Access:
    """One caller's view of the catalog: what it may read, write and see unmasked.

    ``masks`` maps each visible collection whose personal fields this caller may not see
    to {field: rule}. Equal Access values are interchangeable, so the server caches one
    built API per distinct Access, not per caller.
    """

    visible: frozenset[str]
    writable: frozenset[str]
    masks: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def masked_fields(self, collection: str) -> dict[str, str]:
        for cid, fields in self.masks:
            if cid == collection:
                return dict(fields)
        return {}

    def unmasked(self, collection: str) -> bool:
        """Whether the caller sees this collection's personal fields whole."""
        return collection in self.visible and not self.masked_fields(collection)


@dataclass(frozen=True)
class Grant:
    owner: str
    layers: tuple[str, ...]
    to: tuple[str, ...]
    rights: frozenset[str]

    def covers(self, collection: CollectionMeta, department: str, right: str) -> bool:
        if collection.department != self.owner or department not in self.to:
            return False
        if "*" not in self.layers and collection.id.removeprefix(f"{self.owner}-") not in (
            self.layers
        ):
            return False
        return right in self.rights or (
            right == "read" and bool(self.rights & {"write", "personal-data"})
        )


@dataclass(frozen=True)
class Limits:
    max_page_size: int = 1000
    max_body_bytes: int = 16 * 1024 * 1024
    max_readings_body_bytes: int = 64 * 1024 * 1024
    max_process_input_bytes: int = 1024 * 1024
    rate_per_second: float = 50.0
    rate_burst: int = 200


@dataclass(frozen=True)
class Policy:
    grants: tuple[Grant, ...] = ()
    personal_data: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    limits: Limits = Limits()

    @classmethod
    def load(cls, data_dir: str | Path | None = None) -> Policy:
        """The data directory's policy file if it has one, else the shipped one."""
        own = Path(data_dir) / POLICY_FILE if data_dir is not None else None
        if own is not None and own.is_file():
            try:
                raw = yaml.safe_load(own.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise InputError("policy", f"{own}: not valid YAML: {exc}") from None
        else:
            raw = load_config("access_policy")
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Policy:
        grants = []
        for n, g in enumerate(raw.get("grants") or [], 1):
            rights = frozenset(g.get("rights") or ["read"])
            unknown = rights - set(RIGHTS)
            if unknown or not g.get("owner") or not g.get("to"):
                raise InputError(
                    "policy",
                    f"grant {n}: needs owner, to and rights among {', '.join(RIGHTS)}"
                    + (f" (unknown: {', '.join(sorted(unknown))})" if unknown else ""),
                )
            grants.append(
                Grant(str(g["owner"]), tuple(g.get("layers") or ["*"]), tuple(g["to"]), rights)
            )
        personal = raw.get("personal_data") or {}
        for cid, fields in personal.items():
            bad = [rule for rule in fields.values() if rule not in MASK_RULES]
            if bad:
                raise InputError(
                    "policy", f"{cid}: unknown mask rule {bad[0]!r}; rules: {', '.join(MASK_RULES)}"
                )
        limits = Limits(**(raw.get("limits") or {}))
        return cls(tuple(grants), personal, limits)

    def with_grants(self, extra: Iterable[Grant]) -> Policy:
        """This policy with more grants (approved access requests join the file's here)."""
        extra = tuple(extra)
        return replace(self, grants=self.grants + extra) if extra else self

    # -- decisions -----------------------------------------------------------------------
    def allows(self, caller: Caller, collection: CollectionMeta, right: str) -> bool:
        """Whether a caller holds a right on a collection."""
        if caller.anonymous:
            return right == "read" and collection.classification == "public"
        if (collection.id, right) in caller.grants:
            return True
        if right == "read" and any(collection.id == cid for cid, _ in caller.grants):
            return True
        owner = caller.department == collection.department
        if right == "read":
            if collection.classification in ("public", "shared") or owner:
                return True
        elif right == "write":
            if caller.role == "auditor":
                return False
            if owner:
                return True
        elif right == "personal-data" and owner:
            return True
        return any(g.covers(collection, caller.department, right) for g in self.grants)

    def access(self, caller: Caller, collections: Iterable[CollectionMeta]) -> Access:
        visible, writable, masks = set(), set(), []
        for c in collections:
            if not self.allows(caller, c, "read"):
                continue
            visible.add(c.id)
            if self.allows(caller, c, "write"):
                writable.add(c.id)
            fields = self.personal_data.get(c.id)
            if fields and not self.allows(caller, c, "personal-data"):
                masks.append((c.id, tuple(sorted(fields.items()))))
        return Access(frozenset(visible), frozenset(writable), tuple(sorted(masks)))


def mask_value(rule: str, value: Any) -> Any:
    """A personal value as the rule shows it (any type is masked as its text)."""
    return MASK_RULES[rule](None if value is None else str(value))
