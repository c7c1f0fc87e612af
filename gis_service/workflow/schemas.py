"""Request bodies of the issue API (validated strictly: unknown fields are refused)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class NewIssue(BaseModel):
    """An issue to report at a point or a drawn area."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200, description="What is wrong, in a line")
    description: str = Field(default="", max_length=4000)
    category: str = Field(description="A category id of GET /api/workflow (e.g. sewage, waste)")
    severity: str = Field(default="medium", description="low, medium, high or critical")
    source: str = Field(default="patrol", description="patrol, public or hotline (alerts are raised by the platform)")
    hotline_ref: str | None = Field(default=None, max_length=64, description="The 12345/12369 ticket number")
    geometry: dict[str, Any] = Field(description="GeoJSON Point or Polygon (longitude/latitude, EPSG:4326)")
    idempotency_key: str | None = Field(
        default=None,
        min_length=8,
        max_length=128,
        description="A key the client makes once per report; sending the same report again returns the first",
    )


class TransitionRequest(BaseModel):
    """A step of the workflow: the state to go to and what that step requires."""

    model_config = ConfigDict(extra="forbid")
    to: str = Field(description="The state id to go to (reported, assigned, handled, verified, closed)")
    note: str = Field(default="", max_length=4000, description="What was done or why (the evidence when handled)")
    department: str | None = Field(default=None, max_length=200, description="The department assigned (交办)")
    deadline: dt.datetime | None = Field(default=None, description="When the department must have handled it")


class NewComment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=4000)


class NewPatrol(BaseModel):
    """A patrol a chief starts (on the phone); points follow as they are recorded."""

    model_config = ConfigDict(extra="forbid")
    started_at: dt.datetime | None = Field(default=None, description="When it began (default: now); with time zone")
    note: str = Field(default="", max_length=4000)
    idempotency_key: str | None = Field(
        default=None, min_length=8, max_length=128, description="Sent again (offline phone): the first patrol"
    )


class TrackPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    time: dt.datetime = Field(description="When the position was taken, with time zone")
    accuracy_m: float | None = Field(default=None, ge=0, le=10_000)


class TrackPoints(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: list[TrackPoint] = Field(min_length=1, max_length=5000)


class FinishPatrol(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=4000)
