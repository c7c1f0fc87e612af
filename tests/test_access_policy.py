"""The policy's decisions (``gis_service/access/policy.py``) for every kind of principal: the
rule tables later phases extend, and the 401/403 answers of ``require``."""

from __future__ import annotations

import pytest

from gis_service.access.policy import ACTION_ROLES, LAYER_READERS, Action, allowed, can_read_layer, require
from gis_service.access.principal import ANONYMOUS, USER_ROLES, Principal, Role
from gis_service.errors import Forbidden, Unauthorized, status_for
from layers.catalog import load_catalog

LAYERS = load_catalog().ids


def user(role: Role) -> Principal:
    return Principal(kind="user", name=f"someone-{role}", role=role, method="bearer")


STATION = Principal(kind="station", name="S01", role=Role.STATION, method="api_key")
PARTNER = Principal(kind="partner", name="zhangzhou", role=Role.PARTNER, method="api_key", layers=frozenset({"river"}))
EVERYONE = [ANONYMOUS, STATION, PARTNER, *(user(r) for r in USER_ROLES)]


@pytest.mark.parametrize("principal", EVERYONE, ids=lambda p: p.actor)
def test_every_layer_is_public_today_for_everyone(principal: Principal) -> None:
    for layer in LAYERS:
        assert can_read_layer(principal, layer)
        assert allowed(principal, Action.READ_LAYER, layer)
        assert require(principal, Action.READ_LAYER, layer) is principal


def test_access_classes_other_than_public() -> None:
    assert not can_read_layer(ANONYMOUS, "redline", "internal")
    assert all(can_read_layer(user(r), "redline", "internal") for r in USER_ROLES)
    assert can_read_layer(PARTNER, "river", "internal") and not can_read_layer(PARTNER, "redline", "internal")
    assert not can_read_layer(STATION, "river", "internal")
    restricted = {r for r in USER_ROLES if can_read_layer(user(r), "outfall", "restricted")}
    assert restricted == {Role.DATA_MANAGER, Role.ADMIN}
    assert not any(can_read_layer(p, "river", "secret-ish") for p in EVERYONE)  # unknown class: nobody
    assert set(LAYER_READERS) == {"public", "internal", "restricted"}


@pytest.mark.parametrize("action", [a for a in Action if a != Action.READ_LAYER])
def test_only_the_listed_roles_may_act(action: Action) -> None:
    permitted = {p.role for p in EVERYONE if allowed(p, action)}
    assert permitted == set(ACTION_ROLES[action]) and permitted
    with pytest.raises(Unauthorized, match="needs you to sign in") as anonymous:
        require(ANONYMOUS, action)
    assert status_for(anonymous.value) == 401 and "WWW-Authenticate" in anonymous.value.headers
    for principal in EVERYONE[1:]:
        if principal.role in ACTION_ROLES[action]:
            assert require(principal, action) is principal
        else:
            with pytest.raises(Forbidden, match=f"{action.value} is not allowed for {principal.actor}") as refused:
                require(principal, action)
            assert status_for(refused.value) == 403


def test_admin_actions_are_admin_only() -> None:
    for action in (Action.MANAGE_USERS, Action.MANAGE_KEYS, Action.READ_AUDIT):
        assert ACTION_ROLES[action] == {Role.ADMIN}
    assert ACTION_ROLES[Action.WRITE_LAYER] == {Role.DATA_MANAGER, Role.ADMIN}
    assert ACTION_ROLES[Action.PUSH_OBSERVATIONS] == {Role.STATION}
