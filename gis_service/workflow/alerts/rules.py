"""The alert rules as data (``rules.yaml``), validated strictly when loaded: each rule's stations,
condition, severity, escalation and issue; checked against the workflow (severities, categories,
roles) and the HJ 212 factor codes and flags."""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gis_service.access.principal import USER_ROLES, Role
from gis_service.monitoring.hj212.factors import FACTORS, FLAG_QUALITY
from gis_service.workflow.machine import Label, Workflow, load_workflow

RULES_FILE = Path(__file__).with_name("rules.yaml")

StationKind = Literal["air_national", "air_local", "water_auto", "seawater", "drinking_intake", "outfall", "section"]
StandardKind = Literal["river", "lake", "sea", "air"]
StationStatus = Literal["active", "maintenance", "inactive"]
SURFACE_CLASSES = ("I", "II", "III", "IV", "V")
SEA_CLASSES = ("一类", "二类", "三类", "四类")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StationFilter(_Strict):
    """The stations a rule watches; a key left out matches every station."""

    kinds: frozenset[StationKind] | None = None
    standards: frozenset[StandardKind] | None = None
    statuses: frozenset[StationStatus] | None = None

    def matches(self, station: dict) -> bool:
        return all(
            allowed is None or station.get(key) in allowed
            for key, allowed in (("kind", self.kinds), ("standard", self.standards), ("status", self.statuses))
        )


class WorseThanClass(_Strict):
    """The water class is worse than ``class`` (``target``: the station's 水质目标)."""

    type: Literal["worse_than_class"]
    klass: str = Field(alias="class")
    measure: ClassVar[str] = "exceedance_multiple"
    needs_values: ClassVar[bool] = True

    @model_validator(mode="after")
    def _known_class(self) -> WorseThanClass:
        if self.klass != "target" and self.klass not in (*SURFACE_CLASSES, *SEA_CLASSES):
            raise ValueError(f"class {self.klass!r}: use target or one of {', '.join(SURFACE_CLASSES + SEA_CLASSES)}")
        return self


class OutsideRange(_Strict):
    """The latest valid value of one factor lies below ``min`` or above ``max``."""

    type: Literal["outside_range"]
    factor: str
    min: float | None = None
    max: float | None = None
    measure: ClassVar[str] = "distance_outside"
    needs_values: ClassVar[bool] = True

    @model_validator(mode="after")
    def _bounds(self) -> OutsideRange:
        if self.factor not in FACTORS:
            raise ValueError(f"factor {self.factor!r} is not an HJ 212 code the service stores: {', '.join(FACTORS)}")
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError("min must be below max")
        return self


class AqiAbove(_Strict):
    """The real-time AQI (HJ 633) is above ``aqi``."""

    type: Literal["aqi_above"]
    aqi: int = Field(ge=0, le=500)
    measure: ClassVar[str] = "aqi"
    needs_values: ClassVar[bool] = True


class DataMissing(_Strict):
    """No value at all for ``hours``."""

    type: Literal["data_missing"]
    hours: float = Field(gt=0, le=24 * 31)
    measure: ClassVar[str] = "hours_without_data"
    needs_values: ClassVar[bool] = False

    @property
    def window(self) -> dt.timedelta:
        return dt.timedelta(hours=self.hours)


class LoggerFlags(_Strict):
    """A factor's latest value carries one of the HJ 212 data ``flags``."""

    type: Literal["logger_flags"]
    flags: frozenset[str] = Field(min_length=1)
    measure: ClassVar[str] = "factors_flagged"
    needs_values: ClassVar[bool] = True

    @model_validator(mode="after")
    def _known_flags(self) -> LoggerFlags:
        unknown = sorted(self.flags - set(FLAG_QUALITY))
        if unknown:
            raise ValueError(f"flags {unknown} are not HJ 212 data flags: {', '.join(FLAG_QUALITY)}")
        return self


Condition = Annotated[WorseThanClass | OutsideRange | AqiAbove | DataMissing | LoggerFlags, Field(discriminator="type")]


class EscalationStep(_Strict):
    """The severity an alert rises to once it persisted ``after_hours`` or its peak measure
    reached ``measure_at_least`` (exactly one of the two)."""

    after_hours: float | None = Field(default=None, gt=0)
    measure_at_least: float | None = None
    severity: str

    @model_validator(mode="after")
    def _one_trigger(self) -> EscalationStep:
        if (self.after_hours is None) == (self.measure_at_least is None):
            raise ValueError("an escalation step needs exactly one of after_hours and measure_at_least")
        return self

    def reached(self, duration: dt.timedelta, peak: float | None) -> bool:
        if self.after_hours is not None:
            return duration >= dt.timedelta(hours=self.after_hours)
        return peak is not None and self.measure_at_least is not None and peak >= self.measure_at_least


class IssueSpec(_Strict):
    category: str


class Rule(Label):
    """One alert rule."""

    stations: StationFilter = StationFilter()
    condition: Condition
    severity: str
    escalation: tuple[EscalationStep, ...] = ()
    issue: IssueSpec | None
    max_age_hours: float = Field(default=24, gt=0, le=24 * 366)
    """Values older than this when the rule is evaluated are not judged (a station silent for
    days keeps its last values; whether it is silent is the data-missing rule's business)."""


RuleId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class AlertRules(_Strict):
    """The validated rules, in the file's order, and who may acknowledge an alert."""

    rules: dict[RuleId, Rule] = Field(min_length=1)
    acknowledge: frozenset[Role]

    def check_workflow(self, workflow: Workflow) -> None:
        """Severities and categories must be the workflow's, the roles people's; escalation
        steps must rise above the rule's own severity."""
        order = list(workflow.severities)
        machines = sorted(str(r) for r in self.acknowledge - set(USER_ROLES))
        if machines:
            raise ValueError(f"acknowledge: roles {machines} are machine keys; alerts are acknowledged by people")
        for rule_id, rule in self.rules.items():
            named = [rule.severity, *(step.severity for step in rule.escalation)]
            unknown = sorted({s for s in named if s not in order})
            if unknown:
                raise ValueError(f"rules.{rule_id}: severities {unknown} are not the workflow's: {', '.join(order)}")
            for step in rule.escalation:
                if order.index(step.severity) <= order.index(rule.severity):
                    raise ValueError(f"rules.{rule_id}: an escalation step to {step.severity} does not rise above")
            if rule.issue is not None and rule.issue.category not in workflow.categories:
                raise ValueError(
                    f"rules.{rule_id}.issue: category {rule.issue.category!r} is not one of "
                    f"{', '.join(workflow.categories)}"
                )

    def severity_of(self, rule: Rule, order: list[str], duration: dt.timedelta, peak: float | None) -> str:
        """The rule's severity for an alert that persisted ``duration`` with this peak measure."""
        reached = [rule.severity, *(s.severity for s in rule.escalation if s.reached(duration, peak))]
        return max(reached, key=order.index)


class AlertRulesFileError(ValueError):
    """The rules file is not valid; the message names the file and what is wrong."""


def parse_rules(text: str, origin: str, workflow: Workflow) -> AlertRules:
    """Validate an alert rules document (YAML text) against the workflow; errors name ``origin``."""
    try:
        rules = AlertRules.model_validate(yaml.safe_load(text))
        rules.check_workflow(workflow)
    except (ValidationError, yaml.YAMLError, ValueError) as exc:
        raise AlertRulesFileError(f"{origin}: {exc}") from exc
    return rules


@cache
def load_rules(path: Path = RULES_FILE) -> AlertRules:
    """The alert rules of ``rules.yaml``, checked against ``workflow.yaml`` (read once)."""
    return parse_rules(path.read_text(encoding="utf-8"), str(path), load_workflow())
