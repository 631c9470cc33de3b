"""python -m streamssm.wyoming: wake words or speech to text for Home Assistant (the Wyoming protocol).

Built on the `wyoming` package's own server and event classes. What it serves depends on the model:
  keyword model (kws): describe -> info lists each keyword as a wake word. detect (names: report
    only these) -> audio-start, audio-chunk... -> a detection (name, timestamp in ms) for each
    keyword heard; at audio-stop, not-detected if none was.
  speech model (asr): describe -> info lists one ASR program that streams transcripts. transcribe
    -> audio-start (answered by transcript-start), audio-chunk... (transcript-chunk with each word
    once it is stable: no later text takes it back, so the chunks add up to the transcript)
    -> audio-stop: transcript (the whole text), then transcript-stop.
Audio chunks of any rate, sample width (8, 16, 24, 32 bit) and channel count go through the
engine's own front end (channels averaged, resampled). Many clients are decoded together as in
`streamssm.serve` (the same batching and queue options). Bad input (a rate change within a
stream, unknown wake word names, broken PCM) is answered with an error event and the connection
is closed.

Examples:
  python -m streamssm.wyoming --model kws                     # wake words on tcp://127.0.0.1:10400
  python -m streamssm.wyoming --model asr --uri tcp://0.0.0.0:10300
  python -m streamssm.wyoming --model kws --keywords jarvis "hey streamssm"   # wake words from text too
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from functools import partial

from . import __version__
from .audio import as_mono_float32
from .decode_loop import END, DecodeLoop, Recognizers, add_decode_options, decode_loop_of
from .extras import require
from .pcm import pcm_to_array

require("wyoming")  # without the serve extra: one line that says how to install it
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop  # noqa: E402
from wyoming.audio import AudioChunk, AudioStart, AudioStop  # noqa: E402
from wyoming.error import Error  # noqa: E402
from wyoming.event import Event  # noqa: E402
from wyoming.info import AsrModel, AsrProgram, Attribution, Describe, Info, WakeModel, WakeProgram  # noqa: E402
from wyoming.server import AsyncEventHandler, AsyncServer  # noqa: E402
from wyoming.wake import Detect, Detection, NotDetected  # noqa: E402

PORTS = {"kws": 10400, "asr": 10300}  # Home Assistant's conventions: wake word, speech to text
ATTRIBUTION = Attribution(name="streamssm", url="")
LINGER_S = 2.0  # how long a connection closed for bad input still takes (and drops) the client's data


def describe(recognizers: Recognizers) -> Info:
    """The info event of a server of this model: wake words, or one streaming ASR program."""
    recognizer = recognizers.default
    about = dict(attribution=ATTRIBUTION, installed=True, version=__version__)
    if recognizer.task == "kws":
        models = [WakeModel(name=k, description=k, languages=["en"], phrase=k, **about) for k in recognizer.keywords]
        return Info(
            wake=[WakeProgram(name="streamssm", description="streamssm keyword spotter", models=models, **about)]
        )
    model = AsrModel(
        name=recognizers.name, description=f"streamssm speech recognizer {recognizers.name}", languages=["en"], **about
    )
    return Info(
        asr=[
            AsrProgram(
                name="streamssm",
                description="streamssm streaming speech recognizer",
                models=[model],
                supports_transcript_streaming=True,
                **about,
            )
        ]
    )


class Handler(AsyncEventHandler):
    """One Wyoming client: one audio stream at a time between audio-start and audio-stop."""

    def __init__(self, recognizers: Recognizers, decode_loop: DecodeLoop, info: Info, *args):
        super().__init__(*args)
        self.recognizers, self.decode_loop, self.info = recognizers, decode_loop, info
        self.speech = recognizers.default.task == "asr"
        self.names: list[str] | None = None
        self.session = self.sender = None

    async def handle_event(self, event: Event) -> bool:
        try:
            return await self._handle(event)
        except (TypeError, ValueError, RuntimeError) as error:  # what bad audio raises
            await self.write_event(Error(text=str(error), code="bad-input").event())
            await self._linger()
            return False

    async def _linger(self) -> None:
        """Half-close, then discard what the client still sends for up to LINGER_S: closing with its
        audio unread would reset the connection, and the client could lose the error event."""
        self.writer.write_eof()
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
            await asyncio.wait_for(self._discard_input(), LINGER_S)

    async def _discard_input(self) -> None:
        while await self.reader.read(2**16):
            pass

    async def _handle(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(self.info.event())
        elif Detect.is_type(event.type):
            self.names = Detect.from_event(event).names or None
        elif Transcribe.is_type(event.type):
            pass  # one model and one language: nothing to choose
        elif AudioStart.is_type(event.type):
            await self._start()
        elif AudioChunk.is_type(event.type):
            chunk = AudioChunk.from_event(event)
            if self.session is None:
                await self._start()
            samples = as_mono_float32(pcm_to_array(chunk.audio, chunk.width, chunk.channels), downmix=True)
            await self.session.put(samples, chunk.rate)
        elif AudioStop.is_type(event.type) and self.session is not None:
            self.session.finish()
            await self.sender
            self.session = self.sender = None
        return True

    async def _start(self) -> None:
        """A new audio stream (after an unfinished one, that one is dropped)."""
        await self.disconnect()
        self.session = self.decode_loop.open(await self.recognizers.get(keywords=self.names))
        if self.speech:
            await self.write_event(TranscriptStart(language="en").event())
        self.sender = asyncio.create_task((self._send_text if self.speech else self._send_detections)(self.session))

    async def _send_detections(self, session) -> None:
        detected = False
        while (events := await session.events()) is not END:
            for event in events:
                await self.write_event(Detection(name=event.text, timestamp=round(event.end * 1000)).event())
                detected = True
        if not detected:
            await self.write_event(NotDetected().event())

    async def _send_text(self, session) -> None:
        """Transcript chunks of the stable words only (a word search may revise the rest), so
        that the chunks add up to the transcript."""
        finals, sent = [], ""
        while (events := await session.events()) is not END:
            for event in events:
                if event.kind == "final":
                    finals.append(event.text)
                stable = [w.text for w in event.words[: event.stable]] if event.kind == "partial" else []
                text = " ".join(finals + stable)
                if text.startswith(sent) and text != sent:
                    await self.write_event(TranscriptChunk(text=text[len(sent) :]).event())
                    sent = text
        await self.write_event(Transcript(text=" ".join(finals), language="en").event())
        await self.write_event(TranscriptStop().event())

    async def disconnect(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
        if self.session is not None:
            self.session.close()
        self.session = self.sender = None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m streamssm.wyoming", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--uri",
        help="where to listen: tcp://HOST:PORT or unix://PATH "
        "(default: tcp://127.0.0.1:10400 for a keyword model, :10300 for speech)",
    )
    add_decode_options(parser)
    return parser.parse_args(argv)


async def main_async(args) -> None:
    recognizers, decode_loop = decode_loop_of(args)
    uri = args.uri or f"tcp://127.0.0.1:{PORTS[recognizers.default.task]}"
    if not uri.startswith(("tcp://", "unix://")):
        raise ValueError(f"--uri must be tcp://HOST:PORT or unix://PATH, got {uri!r}")
    server = AsyncServer.from_uri(uri)
    await server.start(partial(Handler, recognizers, decode_loop, describe(recognizers)))
    print(f"serving {args.model} ({recognizers.default.task}) over Wyoming on {uri}", file=sys.stderr, flush=True)
    try:
        await decode_loop.run_until_stopped()
    finally:
        await server.stop()


def main(argv=None) -> int:
    try:
        asyncio.run(main_async(parse_args(argv)))
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
