"""What the Evidently UI drew: each dashboard panel's legend and the points of its lines, read from the DOM
headless Chromium rendered (its charts are SVG: one path per series, one mark per point)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

_TITLE = re.compile(r"<h5[^>]*>([^<]+)</h5>")
_LINE = re.compile(r'<path[^>]*\bd="(M[^"]+)"[^>]*class="MuiLineElement-root')
_MARK = re.compile(r'class="MuiMarkElement-root')
_LEGEND = re.compile(r'class="[^"]*MuiChartsLegend-label[^"]*"[^>]*>([^<]+)<')


@dataclass(frozen=True, slots=True)
class RenderedPanel:
    title: str
    legend: tuple[str, ...]
    lines: int  # drawn series
    points: int  # drawn data points over all series

    @property
    def has_data(self) -> bool:
        return self.lines > 0 and self.points > 0


def rendered_panels(dom: str) -> dict[str, RenderedPanel]:
    """Each panel by its title: everything between its title and the next one is its card."""
    titles = list(_TITLE.finditer(dom))
    panels = {}
    ends = [following.start() for following in titles[1:]] + [len(dom)]
    for current, end in zip(titles, ends, strict=False):
        card = dom[current.end() : end]
        title = html.unescape(current.group(1)).strip()
        panels[title] = RenderedPanel(
            title=title,
            legend=tuple(html.unescape(label).strip() for label in _LEGEND.findall(card)),
            lines=len(_LINE.findall(card)),
            points=len(_MARK.findall(card)),
        )
    return panels
