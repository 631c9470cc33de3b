"""The events a stream emits."""

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Event:
    """kind: "keyword" | "partial" | "final"; times in seconds from the start of the stream."""

    kind: str
    text: str
    start: float
    end: float
    score: float

    def to_dict(self) -> dict:
        return asdict(self)
