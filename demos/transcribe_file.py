"""Transcribe a sound file with the bundled speech recogniser, word by word with times.

    python demos/transcribe_file.py [FILE]     # default: demos/audio/printing.flac

The file is streamed in 40 ms blocks, as live audio would be: a "partial" event whenever the
text grows, a "final" event with word times at each endpoint (a pause or the end of the file).
"""

import sys

from streamssm import StreamingRecognizer
from streamssm.sources import file_chunks

path = sys.argv[1] if len(sys.argv) > 1 else "demos/audio/printing.flac"
recognizer = StreamingRecognizer.from_pretrained("asr")
stream = recognizer.create_stream()

for event in stream.run(file_chunks(path, block_ms=40)):
    if event.kind == "partial":
        print(f"  ... {event.text}")
        continue
    print(f"final ({event.start:.2f}-{event.end:.2f} s): {event.text}")
    for word in event.words:  # each word with the times its tokens were emitted at
        print(f"  {word.start:6.2f} {word.end:6.2f}  {word.text}")
