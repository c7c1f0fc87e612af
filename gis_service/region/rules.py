"""The compensation rules of the cross-boundary sections (``compensation.yaml``), validated strictly."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gis_service.monitoring.standards.tables import water_standards
from layers.catalog import CatalogError, format_validation_error

RULES_FILE = Path(__file__).with_name("compensation.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Title(_Strict):
    zh: str
    en: str


class FactorRate(_Strict):
    """What one assessed factor (考核因子) costs the upstream city when it exceeds the target."""

    rate_per_tonne: float = Field(ge=0, description="per tonne above the target, when the section's flow is known")
    rate_per_multiple: float = Field(ge=0, description="per unit of exceedance multiple, without a flow")


class SectionRule(_Strict):
    flow_m3s: float | None = Field(default=None, gt=0)


class CompensationRules(_Strict):
    """A rule set: the factors counted with their rates, the reward, the cap and the known flows."""

    rule_set: Title
    status: Literal["demo", "official"]
    unit: str
    standard: Literal["GB 3838-2002"]
    factors: dict[str, FactorRate] = Field(min_length=1)
    reward_per_month: float = Field(ge=0)
    cap_per_month: float = Field(gt=0)
    sections: dict[str, SectionRule] = {}

    @model_validator(mode="after")
    def _factors_of_the_standard(self) -> CompensationRules:
        table = water_standards()["surface"]
        for factor in self.factors:
            if factor not in table.factors:
                raise ValueError(f"factors: {factor!r} is not a GB 3838 factor; use one of {', '.join(table.factors)}")
            if table.factors[factor].rule != "max":
                raise ValueError(f"factors: {factor!r} has no upper limit (pH, DO): it cannot be compensated by excess")
        return self

    def flow(self, code: str) -> float | None:
        """The section's mean flow (m³/s) if the rules know it."""
        rule = self.sections.get(code)
        return rule.flow_m3s if rule else None


def load_rules(path: Path = RULES_FILE) -> CompensationRules:
    """Read and validate a rules file; CatalogError names the file and what is wrong."""
    try:
        return CompensationRules.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as exc:
        raise CatalogError(format_validation_error(path, exc)) from None
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: cannot read: {exc}") from None


@cache
def compensation_rules() -> CompensationRules:
    """The shipped rules (read once)."""
    return load_rules()
