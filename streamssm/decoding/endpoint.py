"""Endpoint rules: when an utterance in a stream is over.

An utterance starts with its first emitted token. It ends at the first frame where either
  - no token has come for `trailing_silence_s` (blank frames after some text), or
  - it has lasted `max_utterance_s` since its first token.
Without text nothing ends, so silence alone never produces an (empty) final result.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import JSONConfig


@dataclass
class EndpointConfig(JSONConfig):
    trailing_silence_s: float = 0.8
    max_utterance_s: float = 20.0

    def __post_init__(self):
        if not self.trailing_silence_s > 0 or not self.max_utterance_s > 0:
            raise ValueError(
                f"endpoint times must be > 0 s, got trailing_silence_s={self.trailing_silence_s}, "
                f"max_utterance_s={self.max_utterance_s}"
            )


class EndpointDetector:
    """The endpoint rules for one stream, applied frame by frame (so chunking does not matter)."""

    def __init__(self, config: EndpointConfig, frame_s: float):
        self.silence_frames = max(1, round(config.trailing_silence_s / frame_s))
        self.max_frames = max(1, round(config.max_utterance_s / frame_s))
        self.first_token_frame: int | None = None
        self.last_token_frame: int | None = None

    nbytes = 16  # two frame counters

    def update(self, frame: int, emitted: bool) -> bool:
        """Record whether `frame` emitted a token; True if the utterance ends at this frame."""
        if emitted:
            self.last_token_frame = frame
            if self.first_token_frame is None:
                self.first_token_frame = frame
        if self.first_token_frame is None:
            return False
        return (
            frame - self.last_token_frame >= self.silence_frames
            or frame - self.first_token_frame + 1 >= self.max_frames
        )

    def reset(self):
        self.first_token_frame = self.last_token_frame = None
