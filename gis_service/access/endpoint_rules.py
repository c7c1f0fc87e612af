"""Rules for endpoint groups that are not one catalog layer (chiefs, the river network), and
the per-feature scopes of roles.

From ``gis_service/access/rules.yaml``: the layers each group reads and the
fields of its records hidden below an access class; per role, the area that scopes its
callers and the layers it scopes (``scopes``, applied by ``gis_service.access.policy``).
Validated strictly (unknown keys, roles or layers abort, naming the file and the key),
like the layer catalog.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gis_service.access import policy
from gis_service.access.layer_rules import can_read, require_layers, sees_class
from gis_service.access.principal import Principal
from layers.catalog import AccessClass, Catalog, CatalogError, Identifier, format_validation_error

RULES_FILE = Path(__file__).with_name("rules.yaml")


class GroupRules(BaseModel):
    """One endpoint group: the layers it reads and its fields' access classes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reads: list[Identifier] = Field(min_length=1)
    fields: dict[Identifier, AccessClass] = {}


ScopeArea = Literal["key_area", "jurisdiction"]
SCOPE_AREAS: dict[str, str] = {"key_area": "partner", "jurisdiction": "chief"}
"""Each area and the one role whose callers have it."""


class ScopeRule(BaseModel):
    """The per-feature scope of one role: its area, and the layers it scopes (by features,
    or by non-public fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    area: ScopeArea
    features: Literal["all"] | list[Identifier] = []
    fields: list[Identifier] = []


class EndpointRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chiefs: GroupRules
    network: GroupRules
    scopes: dict[Literal["partner", "chief"], ScopeRule] = {}

    def check_catalog(self, catalog: Catalog, path: Path = RULES_FILE) -> None:
        """Every layer named must be in the catalog; each scope's area must be its role's."""
        for group in ("chiefs", "network"):
            unknown = [layer for layer in getattr(self, group).reads if layer not in catalog]
            if unknown:
                raise CatalogError(f"{path}: {group}.reads: unknown layers {unknown}; valid: {', '.join(catalog.ids)}")
        for role, rule in self.scopes.items():
            if SCOPE_AREAS[rule.area] != role:
                raise CatalogError(f"{path}: scopes.{role}.area: {rule.area} is the area of {SCOPE_AREAS[rule.area]}")
            for key in ("features", "fields"):
                named = getattr(rule, key)
                unknown = [layer for layer in (named if isinstance(named, list) else []) if layer not in catalog]
                if unknown:
                    raise CatalogError(
                        f"{path}: scopes.{role}.{key}: unknown layers {unknown}; valid: {', '.join(catalog.ids)}"
                    )


def load_rules(path: Path = RULES_FILE) -> EndpointRules:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return EndpointRules.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(format_validation_error(path, exc)) from None
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: cannot read: {exc}") from None


@cache
def rules() -> EndpointRules:
    return load_rules()


def require_group(principal: Principal, catalog: Catalog, group: str) -> None:
    """Refuse (401/403 naming the layers) a caller who may not read every layer the group reads."""
    group_rules: GroupRules = getattr(rules(), group)
    require_layers(principal, [catalog.get(layer) for layer in group_rules.reads if layer in catalog])


def hidden_fields(principal: Principal, group: str) -> frozenset[str]:
    group_rules: GroupRules = getattr(rules(), group)
    return frozenset(name for name, access in group_rules.fields.items() if not sees_class(principal, access))


def strip_fields(principal: Principal, group: str, document: Any) -> Any:
    """The document without the group's fields the caller may not see, at any depth."""
    hidden = hidden_fields(principal, group)
    if hidden:
        _strip(document, hidden)
    return document


def _strip(value: Any, hidden: frozenset[str]) -> None:
    if isinstance(value, dict):
        for name in hidden & value.keys():
            del value[name]
        for item in value.values():
            _strip(item, hidden)
    elif isinstance(value, list):
        for item in value:
            _strip(item, hidden)


def may_use(principal: Principal, catalog: Catalog, group: str) -> bool:
    """Whether the caller may read every layer the group reads (no exception)."""
    group_rules: GroupRules = getattr(rules(), group)
    return all(can_read(principal, catalog.get(layer)) for layer in group_rules.reads if layer in catalog)


policy.use_scope_rules(rules)  # the policy reads its scope rules from here
