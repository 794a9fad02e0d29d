"""Coverage-guided fuzzing (atheris/libFuzzer) of the decoders of untrusted bytes.

Every input must decode to a record or raise the boundary's own error
(:class:`stream.errors.EventError`, :class:`features.trip_update.TripUpdateError`);
anything else is a crash that libFuzzer reports with the input that caused it.
A record that decodes must also encode again and decode to itself.

Run (bounded): ``make fuzz`` or
``.venv/bin/python fuzz/fuzz_decoders.py -max_total_time=60 fuzz/corpus``.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from features.trip_update import TripUpdateError, decode_trip_update
    from stream import codec
    from stream.errors import EventError

_DECODERS = (
    codec.decode_impression,
    codec.decode_interaction,
    codec.decode_example,
    codec.decode_dead_letter,
)


def one_input(data: bytes) -> None:
    if not data:
        return
    which, raw = data[0] % (len(_DECODERS) + 1), data[1:]
    if which == len(_DECODERS):
        with contextlib.suppress(TripUpdateError):
            decode_trip_update(b"t1", raw)
        return
    decoder = _DECODERS[which]
    if decoder is codec.decode_example:  # the same bytes as an examples record (one example or a slate's)
        try:
            for ex in codec.decode_examples(raw):
                if codec.decode_example(codec.encode(ex)) != ex:
                    raise AssertionError(f"round trip changed the example: {ex!r}")
        except EventError:
            pass
    try:
        record = decoder(raw)
    except EventError:
        return
    if decoder(codec.encode(record)) != record:
        raise AssertionError(f"round trip changed the record: {record!r}")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
