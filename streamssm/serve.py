"""python -m streamssm.serve: a streaming WebSocket server, and a browser page that talks to it.

One WebSocket connection is one audio stream. The protocol:
  1. The client may first send a text message with its settings, every field optional:
       {"sample_rate": 16000, "format": "s16le" | "f32le", "keywords": [...], "thresholds": {...}}
     (defaults: 16000 Hz, "s16le"; keywords and thresholds as in StreamingRecognizer: report these
     keywords, trained names or any text, one threshold for all or one per keyword; keywords sent
     to a speech model make the connection's stream a keyword spotter).
  2. Then binary messages of raw mono PCM in that format, of any size.
  3. The server sends one JSON text message per event:
       {"type": "keyword" | "partial" | "final", "text": ..., "start": s, "end": s, "score": ...,
        "words": [[word, start, end], ...], "stable": n}    (times in seconds of this stream; the
                                                            first n words stay in later events)
  4. The client sends the text message {"eof": true}: the server flushes the stream, sends the
     last events, then {"type": "eof"}, and closes the connection (code 1000).
Bad input ends that connection only: the server sends {"type": "error", "message": ...} and closes
with a reason: 1007 for malformed JSON or audio (an odd number of bytes for s16le, NaN in f32le),
1008 for unknown fields or formats, settings sent twice or after the audio, a client more than
--max-ahead-s seconds ahead of real time, or --idle-timeout seconds of silence; 1009 for a
message over --max-message-bytes; 1013 when --max-connections are open.

The same port serves HTTP: GET / is the page (microphone in, keywords and text out), GET /info
the model served and the server's load (connections, decode rounds, chunk-to-events latency).

All connections share one model. A decode loop steps every stream with audio waiting as one
batch (--max-batch-size, --max-wait-ms) in a worker thread, so the server keeps taking audio while
the model computes; each stream's events are those of decoding it alone.

Examples:
  python -m streamssm.serve --model kws          # then open http://127.0.0.1:8765/
  python -m streamssm.serve --model asr --host 0.0.0.0 --port 8765 --max-connections 50
  python -m streamssm.serve --model kws --keywords alexa "hey streamssm"   # trained and text keywords
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from http import HTTPStatus
from importlib import resources

from .audio import as_mono_float32, check_sample_rate
from .decode_loop import END, DecodeLoop, Recognizers, TooFast, add_decode_options, decode_loop_of
from .extras import require
from .pcm import FORMATS, pcm_to_array

require("websockets")  # without the serve extra: one line that says how to install it
from websockets.asyncio.server import ServerConnection, serve  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

SETTINGS = ("sample_rate", "format", "keywords", "thresholds")
CLOSE_REASON_BYTES = 123  # the most a WebSocket close frame can carry


class Refused(Exception):
    """Input that ends a connection: a WebSocket close code and a message for the client."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise Refused(1007, f"malformed JSON: {error}") from None
    if not isinstance(value, dict):
        raise Refused(1007, f"expected a JSON object, got {type(value).__name__}")
    return value


def parse_settings(request: dict, default_rate: int) -> dict:
    """The settings message, checked; {"sample_rate", "format", "options"} with defaults filled in."""
    unknown = sorted(set(request) - set(SETTINGS))
    if unknown:
        raise Refused(1008, f"unknown field(s) {unknown}; known: {', '.join(SETTINGS)}, or eof")
    try:
        rate = check_sample_rate(request.get("sample_rate", default_rate))
    except ValueError as error:
        raise Refused(1008, str(error)) from None
    sample_format = request.get("format", "s16le")
    if sample_format not in FORMATS:
        raise Refused(1008, f"unknown format {sample_format!r}; known: {', '.join(FORMATS)}")
    keywords, thresholds = request.get("keywords"), request.get("thresholds")
    if keywords is not None and not (isinstance(keywords, list) and all(isinstance(k, str) for k in keywords)):
        raise Refused(1008, "keywords must be a list of strings")
    numbers = (int, float)
    if thresholds is not None and not (
        isinstance(thresholds, numbers)
        or (isinstance(thresholds, dict) and all(isinstance(v, numbers) for v in thresholds.values()))
    ):
        raise Refused(1008, "thresholds must be a number or an object of numbers by keyword")
    options = {"keywords": keywords, "thresholds": thresholds}
    return {
        "sample_rate": rate,
        "format": sample_format,
        "options": {name: value for name, value in options.items() if value is not None},
    }


def event_message(event) -> str:
    """One event as the JSON text message of the protocol."""
    return json.dumps(
        {
            "type": event.kind,
            "text": event.text,
            "start": event.start,
            "end": event.end,
            "score": event.score,
            "words": [[w.text, w.start, w.end] for w in event.words],
            "stable": event.stable,
        }
    )


def audio_of(message: bytes, sample_format: str):
    """The mono float32 samples of one binary message; bad audio is refused (1007)."""
    try:
        samples = pcm_to_array(message, FORMATS[sample_format], floating=sample_format == "f32le")
        return as_mono_float32(samples)
    except ValueError as error:
        raise Refused(1007, f"bad {sample_format} audio: {error}") from None


class Server:
    """The WebSocket handler, the HTTP routes and the limits around one shared model."""

    def __init__(
        self, recognizers: Recognizers, decode_loop: DecodeLoop, max_connections: int = 256, idle_timeout: float = 60.0
    ):
        self.recognizers, self.recognizer, self.decode_loop = recognizers, recognizers.default, decode_loop
        self.max_connections, self.idle_timeout = max_connections, idle_timeout
        self.connections = 0
        self.default_rate = self.recognizer.model.config.features.sample_rate  # what the model takes
        self.page = (resources.files(__package__) / "static" / "index.html").read_bytes()

    def info(self) -> dict:
        task = self.recognizer.task  # "kws" (keyword events) or "asr" (text)
        return {
            "model": self.recognizers.name,
            "kind": task,
            "keywords": self.recognizer.keywords if task == "kws" else [],
            "formats": list(FORMATS),
            "default_sample_rate": self.default_rate,
            "connections": self.connections,
            **self.decode_loop.stats(),
        }

    def process_request(self, connection: ServerConnection, request):
        """Plain HTTP on the same port: the page and /info; WebSocket upgrades go through."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        if request.path == "/":
            body, content_type = self.page, "text/html; charset=utf-8"
        elif request.path == "/info":
            body, content_type = json.dumps(self.info()).encode(), "application/json"
        else:
            return connection.respond(HTTPStatus.NOT_FOUND, f"no page {request.path}; try / or /info\n")
        response = connection.respond(HTTPStatus.OK, "")
        response.body = body
        del response.headers["Content-Type"], response.headers["Content-Length"]
        response.headers["Content-Type"] = content_type
        response.headers["Content-Length"] = str(len(body))
        return response

    async def open_session(self, options: dict):
        """A session on the model with the connection's keyword options."""
        try:
            return self.decode_loop.open(await self.recognizers.get(**options))
        except ValueError as error:
            raise Refused(1008, str(error)) from None

    async def handle(self, ws: ServerConnection) -> None:
        """One connection, one stream; refused input closes it with a reason."""
        if self.connections >= self.max_connections:
            await refuse(ws, Refused(1013, f"server full: {self.max_connections} connections open; try again later"))
            return
        self.connections += 1
        connection = Connection(self, ws)
        try:
            await connection.run()
        except Refused as refused:
            await refuse(ws, refused)
        except ConnectionClosed:
            pass
        finally:
            self.connections -= 1
            connection.close()


class Connection:
    """One client's way through the protocol: settings, audio, eof."""

    def __init__(self, server: Server, ws: ServerConnection):
        self.server, self.ws = server, ws
        self.settings: dict | None = None
        self.session = self.sender = None

    async def run(self) -> None:
        while True:
            try:
                message = await asyncio.wait_for(self.ws.recv(), self.server.idle_timeout)
            except asyncio.TimeoutError:
                raise Refused(1008, f"idle: no message for {self.server.idle_timeout:g} s") from None
            if isinstance(message, bytes):
                await self.take_audio(message)
            elif self.take_text(json_object(message)):
                break
        session = await self.start()
        session.finish()
        if await self.sender:
            await self.ws.close(1000, "end of stream")

    def take_text(self, request: dict) -> bool:
        """Settings (once, before the audio), or the end of the stream (returns True)."""
        if "eof" in request:
            if request != {"eof": True}:
                raise Refused(1008, 'the end of the stream is the message {"eof": true} alone')
            return True
        if self.settings is not None or self.session is not None:
            raise Refused(1008, settings_again(self.settings, request))
        self.settings = parse_settings(request, self.server.default_rate)
        return False

    async def take_audio(self, message: bytes) -> None:
        session = await self.start()
        try:
            await session.put(audio_of(message, self.settings["format"]), self.settings["sample_rate"])
        except TooFast as error:
            raise Refused(1008, str(error)) from None

    async def start(self):
        """The stream's session, opened with the settings (or the defaults) on first use."""
        if self.session is None:
            self.settings = self.settings or parse_settings({}, self.server.default_rate)
            self.session = await self.server.open_session(self.settings["options"])
            self.sender = asyncio.create_task(send_events(self.ws, self.session))
        return self.session

    def close(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
        if self.session is not None:
            self.session.close()


def settings_again(settings: dict | None, request: dict) -> str:
    """Why a second settings message is refused."""
    rate = request.get("sample_rate")
    if settings is not None and rate is not None and rate != settings["sample_rate"]:
        return f"sample rate changed from {settings['sample_rate']} to {rate} Hz within one stream"
    return "settings come once, before the audio"


async def send_events(ws: ServerConnection, session) -> bool:
    """Send the session's events until the end of the stream (True) or an error closes it (False)."""
    try:
        while (events := await session.events()) is not END:
            for event in events:
                await ws.send(event_message(event))
        await ws.send(json.dumps({"type": "eof"}))
        return True
    except (TypeError, ValueError, RuntimeError) as error:
        await refuse(ws, Refused(1007, f"audio rejected: {error}"))
    except ConnectionClosed:
        pass
    return False


async def refuse(ws: ServerConnection, refused: Refused) -> None:
    """Tell the client why, then close with the reason (cut to what a close frame holds)."""
    message = str(refused)
    try:
        await ws.send(json.dumps({"type": "error", "message": message}))
    except ConnectionClosed:
        return
    reason = message.encode()[:CLOSE_REASON_BYTES].decode(errors="ignore")
    await ws.close(refused.code, reason)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m streamssm.serve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8765, help="port for the page and the WebSocket (default: 8765; 0: any free port)"
    )
    parser.add_argument("--max-connections", type=int, default=256, help="connections open at once (default: 256)")
    parser.add_argument("--max-message-bytes", type=int, default=2**20, help="largest message taken (default: 1 MiB)")
    parser.add_argument(
        "--idle-timeout", type=float, default=60.0, help="close a connection silent this many seconds (default: 60)"
    )
    add_decode_options(parser)
    return parser.parse_args(argv)


async def main_async(args) -> None:
    recognizers, decode_loop = decode_loop_of(args)
    server = Server(recognizers, decode_loop, args.max_connections, args.idle_timeout)
    # No keepalive pings: a connection whose reading is paused (its queue full) would miss the
    # pongs and be dropped; a client gone silent is closed by --idle-timeout instead.
    async with serve(
        server.handle,
        args.host,
        args.port,
        process_request=server.process_request,
        max_size=args.max_message_bytes,
        ping_interval=None,
    ) as listening:
        host, port = listening.sockets[0].getsockname()[:2]
        print(
            f"serving {args.model} ({server.recognizer.task}) on http://{host}:{port}/ (WebSocket ws://{host}:{port}/)",
            file=sys.stderr,
            flush=True,
        )
        await decode_loop.run_until_stopped()


def main(argv=None) -> int:
    try:
        asyncio.run(main_async(parse_args(argv)))
    except (OSError, ValueError) as error:  # no such model folder, the port is taken, bad --keywords
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
