"""The issue workflow as data: states, transitions with the roles that may take them and the
fields they require, categories, severities and sources (``workflow.yaml``), validated
strictly when loaded; and the decisions read from it."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gis_service.access.principal import USER_ROLES, Role

RULES_FILE = Path(__file__).with_name("workflow.yaml")
Requirement = Literal["note", "department", "deadline"]


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    zh: str
    en: str


class Source(Label):
    roles: frozenset[Role] = frozenset()


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    source: str = Field(alias="from")
    to: str
    roles: frozenset[Role]
    requires: tuple[Requirement, ...] = ()
    zh: str
    en: str


class PatrolFrequency(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    every_days: int = Field(ge=1, le=366)


class Workflow(BaseModel):
    """The validated workflow: every state named exists, every role is a person's role."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    states: dict[str, Label]
    initial: str
    final: tuple[str, ...]
    transitions: tuple[Transition, ...]
    categories: dict[str, Label]
    severities: dict[str, Label]
    sources: dict[str, Source]
    readers: frozenset[Role]
    contact_readers: frozenset[Role]
    patrol_frequency: dict[Literal["city", "district", "town", "village"], PatrolFrequency]
    patrol_buffer_m: float = Field(gt=0, le=1000)

    @model_validator(mode="after")
    def _consistent(self) -> Workflow:
        named = [self.initial, *self.final] + [s for t in self.transitions for s in (t.source, t.to)]
        unknown = sorted(set(named) - set(self.states))
        if unknown:
            raise ValueError(f"unknown states {unknown}; the states are {sorted(self.states)}")
        roles = {r for t in self.transitions for r in t.roles} | {r for s in self.sources.values() for r in s.roles}
        machines = sorted(str(r) for r in (roles | self.readers | self.contact_readers) - set(USER_ROLES))
        if machines:
            raise ValueError(f"roles {machines} are machine keys; issues are handled by people: {list(USER_ROLES)}")
        pairs = [(t.source, t.to) for t in self.transitions]
        if len(pairs) != len(set(pairs)):
            raise ValueError("a transition between the same two states is listed twice")
        return self

    def label(self, state: str) -> dict[str, str]:
        return self.states[state].model_dump()

    def transitions_from(self, state: str) -> list[Transition]:
        """The transitions leaving a state, in the file's order."""
        return [t for t in self.transitions if t.source == state]

    def transition(self, state: str, to: str) -> Transition | None:
        return next((t for t in self.transitions_from(state) if t.to == to), None)


class WorkflowFileError(ValueError):
    """The workflow file is not valid; the message names the file and what is wrong."""


def parse_workflow(text: str, origin: str) -> Workflow:
    """Validate a workflow document (YAML text); errors name ``origin``."""
    try:
        return Workflow.model_validate(yaml.safe_load(text))
    except (ValidationError, yaml.YAMLError) as exc:
        raise WorkflowFileError(f"{origin}: {exc}") from exc


@cache
def load_workflow(path: Path = RULES_FILE) -> Workflow:
    """The workflow of ``workflow.yaml`` (read once)."""
    return parse_workflow(path.read_text(encoding="utf-8"), str(path))
