"""Zone-check rules kept as data (``zone_check.yaml``), validated strictly, and their evaluation.

A rule says: a feature of ``layer`` (optionally whose ``property`` is one of ``values``)
that touches the site, or lies within ``within_m`` metres of it, yields a verdict with
a bilingual message. The overall verdict is the most severe one found, else ``clear``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from layers.catalog import Catalog, Identifier

RULES_FILE = Path(__file__).parent / "zone_check.yaml"

Verdict = Literal["prohibited", "restricted", "caution", "clear"]
SEVERITY: dict[str, int] = {"clear": 0, "caution": 1, "restricted": 2, "prohibited": 3}


class RulesError(ValueError):
    """The rules file is invalid; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class LayerFields(_Strict):
    """Which properties of a checked layer are reported as category and zone."""

    category: Identifier | None = None
    zone: Identifier | None = None


class Rule(_Strict):
    id: Identifier
    verdict: Literal["prohibited", "restricted", "caution"]
    layer: Identifier
    property: Identifier | None = None
    values: list[str] | None = None
    within_m: float = Field(default=0, ge=0, le=5000)
    message: Text
    list_limited_activities: bool = False

    @model_validator(mode="after")
    def _values_need_property(self) -> Rule:
        if (self.property is None) != (self.values is None):
            raise ValueError("give both `property` and `values`, or neither")
        return self


class RuleSet(_Strict):
    layers: dict[Identifier, LayerFields]
    limited_activities: list[Text] = []
    rules: list[Rule]

    def check_catalog(self, catalog: Catalog) -> None:
        """Refuse rules naming layers or properties the catalog does not have."""
        for layer_id, fields in self.layers.items():
            if layer_id not in catalog:
                raise RulesError(f"rules: layer {layer_id!r} is not in the catalog ({', '.join(catalog.ids)})")
            layer = catalog.get(layer_id)
            for name in (fields.category, fields.zone):
                if name is not None and layer.get_property(name) is None:
                    raise RulesError(f"rules: layer {layer_id} has no property {name!r}")
        for rule in self.rules:
            if rule.layer not in self.layers:
                raise RulesError(f"rule {rule.id}: layer {rule.layer!r} is not listed under `layers`")
            if rule.property is not None and catalog.get(rule.layer).get_property(rule.property) is None:
                raise RulesError(f"rule {rule.id}: layer {rule.layer} has no property {rule.property!r}")

    @property
    def search_distance_m(self) -> float:
        """The largest distance any rule looks at."""
        return max((rule.within_m for rule in self.rules), default=0.0)

    def properties_of(self, layer_id: str) -> list[str]:
        """Properties a rule of this layer reads (besides category and zone)."""
        return sorted({rule.property for rule in self.rules if rule.layer == layer_id and rule.property})


@cache
def load_rules(path: Path = RULES_FILE) -> RuleSet:
    """Read and validate a rules file (cached)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return RuleSet.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as exc:
        raise RulesError(f"{path}: {exc}") from None


def _format(template: str, match: dict[str, Any]) -> str:
    distance = match.get("distance_m")
    values = {
        "name": match.get("name") or f"#{match.get('id')}",
        "zone": match.get("zone") or "",
        "category": match.get("category") or "",
        "distance_m": f"{distance:.0f}" if distance is not None else "0",
    }
    return template.format(**values)


def _matches(rule: Rule, match: dict[str, Any]) -> bool:
    if match["layer"] != rule.layer:
        return False
    if rule.property is not None and str(match["attributes"].get(rule.property)) not in (rule.values or []):
        return False
    distance = match.get("distance_m")
    if rule.within_m == 0:
        return distance is None  # touches the site
    return distance is not None and distance <= rule.within_m


def evaluate(rules: RuleSet, matches: Iterable[dict[str, Any]]) -> tuple[Verdict, list[dict[str, Any]]]:
    """The verdict and its reasons for features found around a site.

    Each match has ``layer``, ``id``, ``name``, ``category``, ``zone``, ``distance_m``
    (None when it touches the site) and ``attributes`` (the properties rules read).
    A feature yields at most one reason (its most severe rule); reasons are sorted by
    severity, then by distance.
    """
    reasons: list[dict[str, Any]] = []
    for match in matches:
        rule = next((r for r in rules.rules if _matches(r, match)), None)
        if rule is None:
            continue
        reason: dict[str, Any] = {
            "rule": rule.id,
            "verdict": rule.verdict,
            "message": {"zh": _format(rule.message.zh, match), "en": _format(rule.message.en, match)},
            "layer": match["layer"],
            "id": match["id"],
        }
        if rule.list_limited_activities:
            reason["allowed_activities"] = [text.model_dump() for text in rules.limited_activities]
        reasons.append(reason)
    reasons.sort(key=lambda r: -SEVERITY[r["verdict"]])
    verdict: Verdict = "clear"
    for reason in reasons:
        if SEVERITY[reason["verdict"]] > SEVERITY[verdict]:
            verdict = reason["verdict"]
    return verdict, reasons
