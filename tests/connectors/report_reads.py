"""What a connector reads of a rendered report, to check its ``report_templates()``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from rsbridge.connectors.base import RenderedPart, RenderedReport, SessionDelivery
from rsbridge.engine.render import PARTS, REPORT, Renderer


class _Part(RenderedPart):
    """A rendered part that notes each format read as a template name."""

    __slots__ = ("_name", "_reads")

    def __init__(self, part: RenderedPart, name: str, reads: set[str]) -> None:
        super().__init__(part.text, part.html)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_reads", reads)

    def __getattribute__(self, attr: str) -> Any:
        if attr in ("text", "html"):
            suffix = ".txt" if attr == "text" else ".html"
            object.__getattribute__(self, "_reads").add(
                object.__getattribute__(self, "_name") + suffix
            )
        return object.__getattribute__(self, attr)


class _Parts(Mapping[str, RenderedPart]):
    def __init__(self, parts: Mapping[str, RenderedPart], reads: set[str]) -> None:
        self._parts = {name: _Part(part, name, reads) for name, part in parts.items()}

    def __getitem__(self, name: str) -> RenderedPart:
        return self._parts[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)


def reading(delivery: SessionDelivery) -> tuple[SessionDelivery, set[str]]:
    """``delivery`` with its report fully rendered, and the set that will hold the
    template names (``chat.txt``, ``report.html``) of what is read of it."""
    reads: set[str] = set()
    whole = Renderer().render(delivery.session)
    report = RenderedReport(_Part(whole.full, REPORT, reads), _Parts(whole.parts, reads))
    assert set(whole.parts) == set(PARTS)
    return dataclasses.replace(delivery, report=report), reads
