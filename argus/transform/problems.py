"""Problems found in run data, returned to the caller for rate-limited logging."""

from __future__ import annotations

from dataclasses import dataclass

UNKNOWN_CODE_NAME = "unknown_code_name"
UNKNOWN_RARITY = "unknown_rarity"
INVALID_LEVEL = "invalid_level"
MALFORMED_ITEM = "malformed_item"

# Problem values are raw client input, so they are cut short before anyone logs them.
MAX_VALUE_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Problem:
    """One item or field of run data that the transformation skipped or corrected.

    `kind` is one of the module constants, `section` the `runData` key, and `value`
    the offending input text, truncated to `MAX_VALUE_LENGTH` characters.
    """

    kind: str
    section: str
    value: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", self.value[:MAX_VALUE_LENGTH])


class ProblemList:
    """Problems collected while one run is transformed."""

    def __init__(self) -> None:
        self._problems: list[Problem] = []

    def report(self, kind: str, section: str, value: str) -> None:
        """Record a problem in `section` about the input text `value`."""
        self._problems.append(Problem(kind, section, value))

    def to_tuple(self) -> tuple[Problem, ...]:
        """Return the problems in the order they were found."""
        return tuple(self._problems)
