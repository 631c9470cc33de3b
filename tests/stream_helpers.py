"""Feeding recognizer streams in tests: one stream in given chunk sizes, or several as one batch."""

import numpy as np


def events_of(stream, audio, sizes, rate=16000):
    """All events of `stream` fed `audio` in chunks of `sizes` samples, then finished."""
    ends = np.cumsum(sizes)
    return list(stream.run((audio[end - size : end], rate) for size, end in zip(sizes, ends)))


def alone_and_batched(recognizer, audio, offsets, chunk=2560):
    """Events of streams starting at `offsets` into `audio`: each decoded alone, and all of them
    fed chunk by chunk and decoded together with decode_streams (streams of different ages)."""
    alone = [events_of(recognizer.create_stream(), audio[o:], [len(audio) - o]) for o in offsets]
    streams = [recognizer.create_stream() for _ in offsets]
    batched = [[] for _ in offsets]
    for start in range(0, len(audio), chunk):
        for stream, offset in zip(streams, offsets):
            stream.feed(audio[offset + start : offset + start + chunk], 16000)
        for found, new in zip(batched, recognizer.decode_streams(streams)):
            found += new
    for found, stream in zip(batched, streams):
        found += stream.finish()
    return alone, batched
