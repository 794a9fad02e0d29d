"""Request validation: every bad body is refused with the field named; user ids never echoed."""

from __future__ import annotations

from typing import Any

import pytest

from scoring.errors import RequestError
from scoring.pseudonym import Pseudonymizer
from scoring.requests import parse_events, parse_rank
from scoring.settings import ServeSettings, SettingsError

PSEUDO = Pseudonymizer(b"requests-test-key-0001")


def _rank(body: object) -> Any:
    return parse_rank(body, pseudonymize=PSEUDO, max_k=50, max_candidates=5)


def test_minimal_body_gets_defaults() -> None:
    req = _rank({"session_id": "s1"})
    assert (req.k, req.explore, req.user, req.trip_ids, req.segment) == (10, True, None, None, "general")
    assert req.unit == "session:s1"


def test_user_id_is_pseudonymised_on_arrival() -> None:
    req = _rank({"session_id": "s1", "user_id": "alice@example.com", "preferences": {"difficulty": 5}})
    assert req.user == PSEUDO("alice@example.com") and "alice" not in repr(req)
    assert req.segment == "adventure" and req.unit == req.user


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({}, "session_id", 422),
        ([], "body", 422),
        ({"session_id": ""}, "session_id", 422),
        ({"session_id": "a\nb"}, "session_id", 422),
        ({"session_id": 5}, "session_id", 422),
        ({"session_id": "s", "colour": "red"}, "colour", 422),
        ({"session_id": "s", "k": 0}, "k", 422),
        ({"session_id": "s", "k": 51}, "k", 422),
        ({"session_id": "s", "k": True}, "k", 422),
        ({"session_id": "s", "explore": "yes"}, "explore", 422),
        ({"session_id": "s", "segment": "pirates"}, "segment", 422),
        ({"session_id": "s", "segment": 3}, "segment", 422),
        ({"session_id": "s", "preferences": {"budget": "cheap"}}, "preferences.budget", 422),
        ({"session_id": "s", "preferences": {"difficulty": 9}}, "preferences.difficulty", 422),
        ({"session_id": "s", "preferences": {"themes": [1]}}, "preferences.themes[0]", 422),
        ({"session_id": "s", "preferences": {"mood": 1}}, "preferences.mood", 422),
        ({"session_id": "s", "preferences": 3}, "preferences", 422),
        ({"session_id": "s", "trip_ids": "T1"}, "trip_ids", 422),
        ({"session_id": "s", "trip_ids": []}, "trip_ids", 422),
        ({"session_id": "s", "trip_ids": ["a"] * 6}, "trip_ids", 422),
        ({"session_id": "s", "filters": {"max_price": "x"}}, "filters.max_price", 422),
        ({"session_id": "s", "filters": {"date_from": "tomorrow"}}, "filters.date_from", 422),
        ({"session_id": "s", "filters": {"moon": 1}}, "filters.moon", 422),
    ],
)
def test_invalid_rank_bodies_name_the_field(body: object, field: str, status: int) -> None:
    with pytest.raises(RequestError) as err:
        _rank(body)
    assert (err.value.field, err.value.status) == (field, status)
    assert err.value.problem and str(err.value).startswith(field)


def test_bad_user_id_is_not_echoed() -> None:
    secret = "alice@example.com\n"  # noqa: S105 - a user id, not a password
    with pytest.raises(RequestError) as err:
        _rank({"session_id": "s", "user_id": secret})
    assert err.value.field == "user_id" and "alice" not in str(err.value)


def test_events_single_and_batch() -> None:
    one = parse_events({"session_id": "s", "trip_id": "T1", "type": "click"}, max_events=3, now=lambda: 1.7e9)
    assert one[0].type == "click" and one[0].ts == 1.7e9 and len(one[0].event_id) == 32
    batch = parse_events(
        {"events": [{"session_id": "s", "trip_id": "T1", "type": "dwell", "value": 12.5, "request_id": "r1"},
                    {"session_id": "s", "trip_id": "T2", "type": "save", "event_id": "e2", "ts": 1.8e9}]},
        max_events=3,
    )  # fmt: skip
    assert [e.type for e in batch] == ["dwell", "save"]
    assert batch[0].value == 12.5 and batch[0].request_id == "r1" and batch[1].event_id == "e2"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"trip_id": "T1", "type": "click"}, "session_id"),
        ({"session_id": "s", "type": "click"}, "trip_id"),
        ({"session_id": "s", "trip_id": "T1", "type": "view"}, "type"),
        ({"session_id": "s", "trip_id": "T1", "type": "dwell", "value": -1}, "value"),
        ({"session_id": "s", "trip_id": "T1", "type": "click", "ts": 1.7e12}, "ts"),
        ({"session_id": "s", "trip_id": "T1", "type": "click", "extra": 1}, "extra"),
        ({"events": []}, "events"),
        ({"events": [{"session_id": "s", "trip_id": "T1", "type": "click"}] * 4}, "events"),
        (
            {"events": [{"session_id": "s", "trip_id": "T1", "type": "click"}, {"session_id": "s"}]},
            "events[1].trip_id",
        ),
        ({"events": [{"session_id": "s", "trip_id": "T1", "type": "nope"}]}, "events[0].type"),
        ({"events": [], "more": 1}, "more"),
    ],
)
def test_invalid_events_name_the_field(body: object, field: str) -> None:
    with pytest.raises(RequestError) as err:
        parse_events(body, max_events=3)
    assert err.value.field == field


def test_settings_require_secrets_and_hide_them() -> None:
    with pytest.raises(SettingsError, match="SMARTTRIP_API_TOKENS"):
        ServeSettings.from_env({"SMARTTRIP_ADMIN_TOKENS": "b" * 16, "SMARTTRIP_PSEUDONYM_KEY": "k" * 16})
    env = {
        "SMARTTRIP_API_TOKENS": "a" * 16,
        "SMARTTRIP_ADMIN_TOKENS": "b" * 16,
        "SMARTTRIP_PSEUDONYM_KEY": "k" * 16,
    }
    with pytest.raises(SettingsError, match="SMARTTRIP_MAX_K: expected int"):
        ServeSettings.from_env({**env, "SMARTTRIP_MAX_K": "many"})
    with pytest.raises(SettingsError, match="SMARTTRIP_ADMIN_TOKENS: must differ"):
        ServeSettings.from_env({**env, "SMARTTRIP_ADMIN_TOKENS": "a" * 16})
    with pytest.raises(SettingsError, match="SMARTTRIP_PSEUDONYM_KEY"):
        ServeSettings.from_env({**env, "SMARTTRIP_PSEUDONYM_KEY": "short"})
    s = ServeSettings.from_env({**env, "SMARTTRIP_API_TOKENS": f"{'a' * 16},{'c' * 16}"})
    assert s.api_tokens == ("a" * 16, "c" * 16)
    assert "aaaa" not in repr(s) and "kkkk" not in repr(s)
