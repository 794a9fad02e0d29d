"""Reward, labels and the cascade "examined" rule."""

from __future__ import annotations

import pytest

from stream.events import Impression, Interaction, Labels, SlateItem
from stream.labeling import RewardConfig, examined_by_rank, examples_of, labels_of

T0 = 1_700_000_000.0


@pytest.mark.parametrize(
    ("labels", "reward"),
    [
        (Labels(), 0.0),
        (Labels(click=1), 1.0),
        (Labels(click=4), 1.0),  # repeated clicks count once
        (Labels(click=1, save=1), 2.0),  # strongest engagement, not a sum
        (Labels(save=1), 2.0),  # a save without a logged click still earns its reward
        (Labels(click=1, contact=2), 3.0),
        (Labels(click=1, booking_start=1), 5.0),
        (Labels(click=1, dwell_s=29.9), 1.0),
        (Labels(click=1, dwell_s=30.0), 1.5),  # dwell bonus from the threshold on
        (Labels(dwell_s=120.0), 0.5),
        (Labels(click=1, save=1, contact=1, booking_start=1, dwell_s=600.0), 5.5),
    ],
)
def test_default_reward(labels: Labels, reward: float) -> None:
    assert RewardConfig().reward(labels) == reward
    assert RewardConfig().reward(labels) <= RewardConfig().max_reward == 5.5


def test_reward_weights_are_configurable_and_validated() -> None:
    cfg = RewardConfig(click=0.5, booking_start=10.0, dwell_bonus=0.0)
    assert cfg.reward(Labels(click=1, booking_start=1, dwell_s=99.0)) == 10.0
    with pytest.raises(ValueError, match=r"^RewardConfig\.save: must be a finite number >= 0, got -1\.0$"):
        RewardConfig(save=-1.0)
    with pytest.raises(ValueError, match=r"^RewardConfig\.click: must be a finite number >= 0, got nan$"):
        RewardConfig(click=float("nan"))


def test_labels_count_types_and_sum_dwell() -> None:
    evs = [
        Interaction("e1", "s", "t", "click", T0),
        Interaction("e2", "s", "t", "click", T0),
        Interaction("e3", "s", "t", "save", T0),
        Interaction("e4", "s", "t", "dwell", T0, value=12.5),
        Interaction("e5", "s", "t", "dwell", T0, value=20.0),
        Interaction("e6", "s", "t", "contact", T0),
    ]
    assert labels_of(evs) == Labels(click=2, save=1, contact=1, dwell_s=32.5)
    assert not Labels().engaged
    assert Labels(dwell_s=0.1).engaged


@pytest.mark.parametrize(
    ("engaged", "top_n", "examined"),
    [
        ("-----", 3, "XXX--"),  # no engagement: trust the top 3
        ("-----", 0, "-----"),
        ("X----", 3, "XX---"),  # down to the last engaged rank, plus one
        ("--X--", 3, "XXXX-"),
        ("-X-X-", 3, "XXXXX"),
        ("----X", 3, "XXXXX"),
        ("", 3, ""),
    ],
)
def test_cascade_examined(engaged: str, top_n: int, examined: str) -> None:
    flags = examined_by_rank([c == "X" for c in engaged], no_click_examined_top_n=top_n)
    assert "".join("X" if f else "-" for f in flags) == examined


def test_examples_use_rank_order_but_keep_raw_positions() -> None:
    # page 2 of a result list, listed out of order: positions 12, 10, 11, 13
    slate = tuple(
        SlateItem(trip, pos, 0.0, 0.5, (float(pos),))
        for trip, pos in [("a", 12), ("b", 10), ("c", 11), ("d", 13)]
    )
    imp = Impression("r", "s", "u", "seg", "pol", "m", "phi-v1", T0, slate)
    examples = examples_of(imp, [Interaction("e", "s", "c", "click", T0 + 1, request_id="r")])
    assert [(e.trip_id, e.position, e.clicked, e.examined) for e in examples] == [
        ("a", 12, False, True),  # rank 2 = last click rank + 1
        ("b", 10, False, True),
        ("c", 11, True, True),
        ("d", 13, False, False),
    ]
    assert [e.revision for e in examples_of(imp, [], revisions=[0, 3, 0, 1])] == [0, 3, 0, 1]


def test_randomized_flag_travels_from_slate_to_examples_and_through_the_codec() -> None:
    from stream.codec import decode_example, decode_impression, encode
    from stream.errors import EventError

    imp = Impression(
        request_id="r1", session_id="s1", user_id="u1", segment="general", policy="rules",
        model_version="rules/v1", feature_version="phi-v1", ts=1.7e9,
        slate=(SlateItem("t1", 0, 2.0, 0.9, (1.0,)), SlateItem("t2", 1, 1.0, 0.01, (0.5,), randomized=True)),
    )  # fmt: skip
    assert decode_impression(encode(imp)) == imp
    examples = examples_of(imp, [])
    assert [e.randomized for e in examples] == [False, True]
    assert [decode_example(encode(e)) for e in examples] == list(examples)
    assert b"randomized" not in encode(examples[0])  # written only when true
    bad = encode(examples[1]).replace(b'"randomized":true', b'"randomized":1')
    with pytest.raises(EventError, match="randomized: must be a boolean, got int"):
        decode_example(bad)
    bad_imp = encode(imp).replace(b'"randomized":true', b'"randomized":"yes"')
    with pytest.raises(EventError, match=r"slate\[1\].randomized: must be a boolean, got str"):
        decode_impression(bad_imp)
