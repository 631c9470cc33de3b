"""Many audio sources on one model: streams fed separately, decoded together as one batch.

    python demos/many_streams.py

Each shipped recording plays the part of one client sending 160 ms chunks. `feed` only buffers a
chunk's features; `decode_streams` then runs every stream with audio waiting through the model at
once and returns each stream's new events: the same events each stream would get alone.
"""

from pathlib import Path

from streamssm import StreamingRecognizer
from streamssm.sources import file_chunks

recognizer = StreamingRecognizer.from_pretrained("kws")
chunks = {path.name: list(file_chunks(path, block_ms=160)) for path in sorted(Path("demos/audio").glob("*.flac"))}
streams = {name: recognizer.create_stream() for name in chunks}  # light: one per source
found = {name: [] for name in chunks}

for tick in range(max(len(c) for c in chunks.values())):  # one 160 ms chunk from every client
    live = [name for name in chunks if tick < len(chunks[name])]
    for name in live:
        streams[name].feed(*chunks[name][tick])  # (samples, sample_rate): each stream its own rate
    for name, events in zip(live, recognizer.decode_streams([streams[name] for name in live])):
        found[name] += events
for name, stream in streams.items():  # the end of every source
    found[name] += stream.finish()

for name, events in found.items():
    print(f"{name:18s} {', '.join(e.text for e in events) or '-'}")
