"""One stream of any length runs in constant memory: feed it an hour and watch its state size.

    python demos/long_stream.py [MINUTES]     # default 10

The audio is the shipped "alexa" recording every 5 seconds with silence between, fed in 40 ms
chunks. Every simulated minute it prints the stream's state size (the same every time: every
layer carries a fixed-size state) and the process's peak memory (flat after the first minute).
"""

import resource
import sys

import numpy as np

from streamssm import StreamingRecognizer
from streamssm.audio import read_audio

minutes = int(sys.argv[1]) if len(sys.argv) > 1 else 10
rate, chunk = 16000, 640  # 40 ms chunks
alexa = read_audio("demos/audio/alexa.flac", rate)
period = np.zeros(5 * rate, np.float32)  # the keyword, then silence, every 5 s
period[: len(alexa)] = alexa

recognizer = StreamingRecognizer.from_pretrained("kws", keywords=["alexa"])
stream = recognizer.create_stream()
detections, fed = 0, 0
for minute in range(1, minutes + 1):
    audio = np.tile(period, 12)  # one minute
    for start in range(0, len(audio), chunk):
        detections += len(stream.accept_waveform(audio[start : start + chunk], rate))
    fed += len(audio)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{fed / rate / 60:5.1f} min  state {stream.state_nbytes:,} bytes  peak memory {peak_mb:.0f} MB  "
        f"detections {detections}"
    )
detections += len(stream.finish())
print(f"{detections} detections of 'alexa' in {minutes} min ({12 * minutes} said)")
