"""JSONConfig: the to_dict / from_dict every config dataclass shares (configs are stored as JSON
with the weights)."""

from dataclasses import asdict


class JSONConfig:
    """Mixin for a config dataclass whose fields are JSON values (or nested configs that override
    `from_dict` to rebuild them)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        return cls(**values)
