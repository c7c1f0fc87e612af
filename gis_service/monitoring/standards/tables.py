"""The standards tables as validated data: YAML files under ``data/`` read into frozen models.

Every file is validated strictly when it is loaded: an unknown key, a missing key or a value
of the wrong shape aborts with a message naming the file and the key. Each table entry keeps
the clause of the standard it comes from and the status of its verification:

- ``text``: checked against a copy of the standard's text;
- ``secondary``: supported by two independent secondary sources, not re-read in the text;
- ``unverified``: from one source only; results that use it say so.
"""

from __future__ import annotations

import datetime as dt
import itertools
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import StandardDataError

DATA_DIR = Path(__file__).parent / "data"

Status = Literal["text", "secondary", "unverified"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WaterFactor(_Strict):
    """One water-quality item of a standard's table: its limits per class and where they come from."""

    name: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    hj212: str | None = Field(default=None, pattern=r"^[wa]\d{5}$")
    rule: Literal["max", "min", "range"]
    limits: list[float] | None = None
    limits_by_water_body: dict[str, list[float]] | None = None
    ranges: list[tuple[float, float]] | None = None
    strict: bool = False  # "min" only: the value must be greater than the limit, not equal to it
    water_bodies: list[str] | None = None  # None: applies to every water body of the standard
    clause: str = Field(min_length=1)
    status: Status
    verification: str | None = None
    multiple: bool = True  # whether an exceedance multiple (超标倍数) is computed for it
    in_evaluation_2011: bool = True  # counted by the 2011 evaluation method (地表水环境质量评价办法)
    main_pollutant_first: bool = False  # listed first among the main pollutants when above class III (ibid.)

    @model_validator(mode="after")
    def _shape(self) -> WaterFactor:
        given = [x is not None for x in (self.limits, self.limits_by_water_body, self.ranges)]
        if sum(given) != 1:
            raise ValueError("give exactly one of `limits`, `limits_by_water_body`, `ranges`")
        if (self.ranges is not None) != (self.rule == "range"):
            raise ValueError("`ranges` goes with rule `range`, and only with it")
        if self.strict and self.rule != "min":
            raise ValueError("`strict` applies to rule `min` only")
        return self

    def limits_for(self, water_body: str) -> list[float] | None:
        """The class limits for a water body (None for a range rule)."""
        if self.limits_by_water_body is not None:
            return self.limits_by_water_body[water_body]
        return self.limits


class WaterStandard(_Strict):
    """A water-quality standard: its classes (best first) and its factors."""

    standard: str
    version: str
    title: str
    effective_from: dt.date
    source: str
    classes: list[str] = Field(min_length=2)
    worse_class: str
    water_bodies: list[str] = Field(min_length=1)
    factors: dict[str, WaterFactor] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> WaterStandard:
        n = len(self.classes)
        for fid, f in self.factors.items():
            series: list[Any] = []
            if f.limits is not None:
                series = [f.limits]
            if f.ranges is not None:
                series = [f.ranges]
            if f.limits_by_water_body is not None:
                if set(f.limits_by_water_body) != set(self.water_bodies):
                    raise ValueError(
                        f"factors.{fid}.limits_by_water_body: give one list per water body {self.water_bodies}"
                    )
                series = list(f.limits_by_water_body.values())
            for s in series:
                if len(s) != n:
                    raise ValueError(f"factors.{fid}: {len(s)} values for {n} classes")
                if f.rule in ("max", "min"):
                    ordered = all(a <= b for a, b in itertools.pairwise(s))
                    ordered_desc = all(a >= b for a, b in itertools.pairwise(s))
                    if (f.rule == "max" and not ordered) or (f.rule == "min" and not ordered_desc):
                        raise ValueError(f"factors.{fid}: limits must get laxer from the best class to the worst")
            for wb in f.water_bodies or []:
                if wb not in self.water_bodies:
                    raise ValueError(f"factors.{fid}.water_bodies: unknown water body {wb!r}")
        codes = [f.hj212 for f in self.factors.values() if f.hj212]
        if len(codes) != len(set(codes)):
            raise ValueError("two factors share an HJ 212 code")
        return self


class AboveTable(_Strict):
    """What a standard says for a concentration above a table's last breakpoint."""

    use: str | None = None  # report the IAQI of this other table instead (HJ 633-2012)
    iaqi: int | None = None  # count the IAQI as this value (HJ 633-2026)
    clause: str = Field(min_length=1)

    @model_validator(mode="after")
    def _one(self) -> AboveTable:
        if (self.use is None) == (self.iaqi is None):
            raise ValueError("give exactly one of `use` and `iaqi`")
        return self


class AqiTable(_Strict):
    """Breakpoints of one pollutant and averaging time, matching the standard's IAQI row."""

    pollutant: str
    averaging: Literal["1h", "8h", "24h"]
    breakpoints: list[float] = Field(min_length=2)
    above_table: AboveTable | None = None
    clause: str = Field(min_length=1)
    status: Status
    note: str | None = None


class Report(_Strict):
    """A report type (日报 "24h", 实时报 "1h"): which input key is read with which table."""

    clause: str = Field(min_length=1)
    keys: dict[str, str] = Field(min_length=1)
    companions: dict[str, str] = Field(default_factory=dict)  # inputs used only by an above-table rule


class ConcentrationRounding(_Strict):
    """How concentrations are rounded before the IAQI (HJ 633-2026 4.2.2: GB/T 8170)."""

    method: Literal["half_even"]
    digits: dict[str, int]
    clause: str = Field(min_length=1)


class Pollutant(_Strict):
    name: str
    unit: str
    hj212: str = Field(pattern=r"^a\d{5}$")


class Category(_Strict):
    max_aqi: int | None
    level: str
    name: str
    colour: str = Field(pattern=r"^#[0-9A-F]{6}$")


class AqiStandard(_Strict):
    """One version of the AQI standard: breakpoint tables, categories and the rounding rule."""

    standard: str
    version: str
    title: str
    effective_from: dt.date
    effective_until: dt.date | None = None
    source: str
    iaqi: list[int] = Field(min_length=2)
    rounding: Literal["ceil"]
    rounding_clause: str
    rounding_status: Status
    concentration_rounding: ConcentrationRounding | None = None
    publish_incomplete_above: int | None = None  # with a pollutant missing, publish the AQI only above this
    publish_clause: str | None = None
    pollutants: dict[str, Pollutant]
    tables: dict[str, AqiTable]
    reports: dict[Literal["1h", "24h"], Report]
    categories: list[Category] = Field(min_length=1)
    categories_clause: str
    primary_above: int
    primary_clause: str

    @model_validator(mode="after")
    def _consistent(self) -> AqiStandard:
        for tid, t in self.tables.items():
            if t.pollutant not in self.pollutants:
                raise ValueError(f"tables.{tid}.pollutant: unknown pollutant {t.pollutant!r}")
            if len(t.breakpoints) > len(self.iaqi):
                raise ValueError(f"tables.{tid}: more breakpoints than IAQI levels")
            if any(a >= b for a, b in itertools.pairwise(t.breakpoints)):
                raise ValueError(f"tables.{tid}: breakpoints must increase")
        for rid, r in self.reports.items():
            for key, tid in {**r.keys, **r.companions}.items():
                if tid not in self.tables:
                    raise ValueError(f"reports.{rid}.{key}: unknown table {tid!r}")
            for key, tid in r.keys.items():
                rule = self.tables[tid].above_table
                if (
                    rule is not None
                    and rule.use is not None
                    and rule.use not in {*r.keys.values(), *r.companions.values()}
                ):
                    raise ValueError(
                        f"reports.{rid}.{key}: its above-table rule needs table {rule.use!r} in the report"
                    )
        if self.concentration_rounding is not None:
            unknown = set(self.concentration_rounding.digits) - set(self.pollutants)
            if unknown:
                raise ValueError(f"concentration_rounding.digits: unknown pollutants {sorted(unknown)}")
        if self.categories[-1].max_aqi is not None:
            raise ValueError("categories: the last category must be open-ended (max_aqi: null)")
        return self


class ValidityRule(_Strict):
    description: str
    window: int | Literal["month", "year"]
    min_valid: int = Field(ge=1)
    min_valid_february: int | None = None
    clause: str
    status: Literal["text", "recalled", "product"]


class ValidityRules(_Strict):
    rules: dict[str, ValidityRule]


def _load(name: str | Path, model: type[BaseModel]) -> Any:
    path = name if isinstance(name, Path) else DATA_DIR / name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise StandardDataError(f"{path.name}: cannot read: {exc}") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        kind = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise StandardDataError(f"{path.name}: {where}: {kind}") from exc


def load_water_standard(name: str | Path) -> WaterStandard:
    """Read and validate one water standard file (a name in ``data/`` or a path); not cached."""
    return _load(name, WaterStandard)


def load_aqi_standard(name: str | Path) -> AqiStandard:
    """Read and validate one AQI standard file (a name in ``data/`` or a path); not cached."""
    return _load(name, AqiStandard)


@cache
def water_standards() -> dict[str, WaterStandard]:
    """The water standards by kind: ``surface`` (GB 3838) and ``sea`` (GB 3097)."""
    return {"surface": load_water_standard("gb3838-2002.yaml"), "sea": load_water_standard("gb3097-1997.yaml")}


@cache
def aqi_standards() -> tuple[AqiStandard, ...]:
    """The AQI standard versions, oldest first; each covers [effective_from, effective_until]."""
    versions = (load_aqi_standard("hj633-2012.yaml"), load_aqi_standard("hj633-2026.yaml"))
    for a, b in itertools.pairwise(versions):
        if a.effective_until is None or a.effective_until + dt.timedelta(days=1) != b.effective_from:
            raise StandardDataError(f"{a.standard}-{a.version} must end the day before {b.standard}-{b.version} starts")
    return versions


@cache
def validity_rules() -> dict[str, ValidityRule]:
    """The data-validity rules of aggregates, by id."""
    return _load("validity.yaml", ValidityRules).rules


def validate_all() -> None:
    """Load every standards file, raising :class:`StandardDataError` on the first invalid one."""
    water_standards()
    aqi_standards()
    validity_rules()
