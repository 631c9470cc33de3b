"""The events a stream emits."""

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Word:
    """A recognised word and its time span in seconds from the start of the stream."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Event:
    """kind: "keyword" | "partial" | "final"; times in seconds from the start of the stream.

    `words` (speech recognition only) holds the words of `text` with their times, and `stable`
    how many of them, from the first, no later event of the same utterance changes (all of a
    final's; a partial's last word may still grow, and a word search may still revise more).
    """

    kind: str
    text: str
    start: float
    end: float
    score: float
    words: tuple[Word, ...] = ()
    stable: int = 0

    def to_dict(self) -> dict:
        """The fields as a dict; "words" and "stable" only when there are words."""
        values = asdict(self)
        if self.words:
            values["words"] = list(values["words"])
        else:
            del values["words"], values["stable"]
        return values
