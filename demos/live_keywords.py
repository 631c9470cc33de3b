"""Live keyword spotting with your own keyword subset and thresholds.

    python demos/live_keywords.py                       # the default microphone (Ctrl-C to stop)
    python demos/live_keywords.py demos/audio/alexa.flac  # a recording instead

Without a microphone (no PortAudio, no input device) it falls back to a shipped recording.
"""

import sys

from streamssm import StreamingRecognizer
from streamssm.sources import MicrophoneSource, MicrophoneUnavailable, file_chunks

FALLBACK = "demos/audio/alexa.flac"

# Report only these keywords; "alexa" needs a more confident model than the others (0.6).
recognizer = StreamingRecognizer.from_pretrained(
    "kws", keywords=["alexa", "hey computer", "stop", "seven"], thresholds={"alexa": 0.6}
)
print(
    "listening for",
    ", ".join(recognizer.keywords),
    "with thresholds",
    {k: recognizer.thresholds[k] for k in recognizer.keywords},
)

if len(sys.argv) > 1:
    source = file_chunks(sys.argv[1], block_ms=40)  # (chunk, sample_rate) pairs, as from a microphone
else:
    try:
        source = MicrophoneSource(block_ms=40)  # the default input device, at its own rate
    except MicrophoneUnavailable as error:
        print(f"no microphone ({error}); using {FALLBACK}")
        source = file_chunks(FALLBACK, block_ms=40)

stream = recognizer.create_stream()  # one per audio source; its state has a fixed size
try:
    for event in stream.run(source):  # every chunk's events as they come, then the end's
        print(f"{event.end:7.2f} s  {event.text}  (score {event.score:.2f})")
except KeyboardInterrupt:  # Ctrl-C: report what was heard up to now
    for event in stream.finish():
        print(f"{event.end:7.2f} s  {event.text}  (score {event.score:.2f})")
finally:
    if isinstance(source, MicrophoneSource):
        source.close()
