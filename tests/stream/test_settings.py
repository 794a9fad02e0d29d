"""Stream settings: the throughput knobs and the event loop choice."""

from __future__ import annotations

import asyncio

import pytest

from stream.faust_app import new_faust_app, use_event_loop
from stream.settings import SettingsError, StreamSettings


def test_throughput_settings_from_env_reach_the_faust_app() -> None:
    s = StreamSettings.from_env(
        {
            "SMARTTRIP_FETCH_BYTES": "2097152",
            "SMARTTRIP_STREAM_BUFFER": "8192",
            "SMARTTRIP_PRODUCER_BATCH_BYTES": "524288",
            "SMARTTRIP_EVENT_LOOP": "asyncio",
        }
    )
    assert (s.fetch_bytes, s.stream_buffer, s.producer_batch_bytes, s.event_loop) == (
        2097152,
        8192,
        524288,
        "asyncio",
    )
    conf = new_faust_app(s, "settings-test").conf
    assert conf.consumer_max_fetch_size == 2097152
    assert conf.stream_buffer_maxsize == 8192
    assert conf.producer_max_batch_size == 524288
    assert conf.producer_max_request_size >= 524288


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SMARTTRIP_FETCH_BYTES": "0"}, "SMARTTRIP_FETCH_BYTES: must be >= 1, got 0"),
        ({"SMARTTRIP_STREAM_BUFFER": "-5"}, "SMARTTRIP_STREAM_BUFFER: must be >= 1, got -5"),
        (
            {"SMARTTRIP_PRODUCER_BATCH_BYTES": "big"},
            "SMARTTRIP_PRODUCER_BATCH_BYTES: expected int, got 'big'",
        ),
        ({"SMARTTRIP_EVENT_LOOP": "trio"}, "SMARTTRIP_EVENT_LOOP: must be asyncio or uvloop, got 'trio'"),
    ],
)
def test_bad_throughput_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        StreamSettings.from_env(env)
    assert str(err.value) == message


def test_event_loop_choice_installs_the_policy() -> None:
    before = asyncio.get_event_loop_policy()
    try:
        assert use_event_loop(StreamSettings(event_loop="asyncio")) == "asyncio"
        assert asyncio.get_event_loop_policy() is before
        uvloop = pytest.importorskip("uvloop")
        assert use_event_loop(StreamSettings(event_loop="uvloop")) == "uvloop"
        assert isinstance(asyncio.get_event_loop_policy(), uvloop.EventLoopPolicy)
    finally:
        asyncio.set_event_loop_policy(before)
