"""A client of the WebSocket server: stream a recording to it, print the events it sends back.

    python -m streamssm.serve --model kws &                  # the server (the serve extra)
    python demos/server_client.py [FILE] [--url ws://127.0.0.1:8765]

The audio goes as raw 16-bit mono PCM at the file's own rate, in 100 ms messages; the server
decodes it as one stream and answers with one JSON message per event, then "eof".
"""

import argparse
import asyncio
import json

import numpy as np
from websockets.asyncio.client import connect

from streamssm.sources import file_chunks


async def stream_file(path: str, url: str) -> None:
    async with connect(url) as server:
        chunks = list(file_chunks(path, block_ms=100))  # (float32 samples, rate) of 100 ms each
        rate = chunks[0][1]
        await server.send(json.dumps({"sample_rate": rate, "format": "s16le"}))  # optional settings first
        for samples, _ in chunks:
            await server.send((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
        await server.send(json.dumps({"eof": True}))  # no more audio: the server flushes the stream
        async for message in server:
            event = json.loads(message)
            if event["type"] == "eof":
                break
            print(f"{event['end']:7.2f} s  {event['type']:8s} {event['text']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", default="demos/audio/alexa.flac")
    parser.add_argument("--url", default="ws://127.0.0.1:8765")
    args = parser.parse_args()
    asyncio.run(stream_file(args.file, args.url))
