"""What one caller sees of the SensorThings model: the station layer's access rules applied.

Things, Locations, HistoricalLocations, Sensors and FeaturesOfInterest are views of the
``station`` layer: a caller who may not read that layer reads none of the API (401/403), and
a Thing's ``properties`` hold only the station properties the caller may see (the station
``operator`` is internal: signed-in staff only), and a caller with a per-feature scope reads
them all through it (``Model.source``: a partner with an area sees no station outside it).
Naming a hidden property in ``$filter`` or ``$orderby`` answers 401/403 naming it, as the other
data routes do.
"""

from __future__ import annotations

from dataclasses import dataclass

from gis_service.access import layer_rules
from gis_service.access.principal import Principal
from gis_service.access.scopes import FeatureScope
from gis_service.monitoring.sta.entities import THING, Entity, Prop
from layers.catalog import Catalog, Layer

STATION_LAYER = "station"
KINDS = {"string": "text", "integer": "number", "number": "number", "boolean": "bool"}


@dataclass(frozen=True)
class Model:
    """The entity properties one caller sees."""

    principal: Principal
    layer: Layer  # the station layer, unfiltered (to name what is hidden)
    visible: Layer  # as the caller sees it
    scope: FeatureScope | None = None  # the caller's per-feature scope

    @classmethod
    def of(cls, principal: Principal, catalog: Catalog, scope: FeatureScope | None = None) -> Model:
        """401/403 when the caller may not read the station layer."""
        visible = layer_rules.readable_layer(principal, catalog, STATION_LAYER)
        return cls(principal, catalog.get(STATION_LAYER), visible, scope)

    def source(self, entity: Entity) -> tuple[str, tuple]:
        """The entity's source (``{a}`` still to fill) and its parameters, reading the station
        table as the caller's scope lets it: a partner with an area reads the stations inside it
        (and their locations, sensors, datastreams and observations), a chief a station's
        non-public properties only on their waters."""
        scoped = self.scope.source(self.layer, positional=True) if self.scope is not None else None
        if scoped is None:
            return entity.source.replace("{station}", "station"), entity.source_params
        template = entity.scoped_source if entity.scoped_source and self.scope.filters(self.layer) else entity.source
        if "{station}" not in template:
            return template, entity.source_params
        station = f"({scoped.as_string()})"
        return template.replace("{station}", station), self.scope.positional_params(self.layer) + entity.source_params

    def thing_members(self) -> dict[str, Prop]:
        return {
            p.name: Prop(f'{{a}}."{p.name}"', KINDS.get(p.type, "text"))  # type: ignore[arg-type]
            for p in self.visible.properties
        }

    def props(self, entity: Entity) -> dict[str, Prop]:
        if entity is not THING:
            return entity.props
        members = ", ".join(f"'{name}', {prop.sql}" for name, prop in self.thing_members().items())
        return {**entity.props, "properties": Prop(f"json_build_object({members})", "json", filterable=False)}

    def sub(self, entity: Entity) -> dict[str, dict[str, Prop]]:
        if entity is not THING:
            return entity.sub
        return {"properties": self.thing_members()}

    def refuse(self, entity: Entity, name: str) -> None:
        """401/403 when ``name`` (``properties/operator``) is a station property hidden from the caller."""
        if entity is THING and name.startswith("properties/"):
            member = name.split("/", 1)[1]
            if member in {p.name for p in self.layer.properties}:
                layer_rules.require_properties(self.principal, self.layer, [member])
