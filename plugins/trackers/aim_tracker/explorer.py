"""Ready-made Aim explorer views: URLs that open `aim up` on a chosen query and grouping.

Aim's metrics explorer keeps its state in three URL parameters (``select``, ``grouping``,
``chart``), each a JSON object in Aim's "aim64" encoding: ``O-`` followed by URL-safe base64
without padding (aim_ui's ``utils/encoder/encoder.ts``). Partial objects are merged into the
explorer's defaults, so only what differs from them is written here.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

DEFAULT_BASE = "http://127.0.0.1:43800"  # where `aim up` serves by default

# Every block's training loss, every term: one chart per term, one colour per block, log scale,
# one line per run (stroke), the epoch on the x axis (tracked with every value).
LOSS_QUERY = 'metric.name == "loss" and metric.context.subset == "train"'
LOSS_GROUPING = {"chart": ["context.term"], "color": ["context.block"], "stroke": ["run.hash"]}
LOSS_CHART = {"axesScaleType": {"xAxis": "linear", "yAxis": "log"}, "alignmentConfig": {"type": "epoch", "metric": ""}}


def aim64(state: dict) -> str:
    """The explorer's encoding of one URL state object."""
    text = json.dumps(state, separators=(",", ":")).encode()
    return "O-" + base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode_aim64(value: str) -> dict:
    """Inverse of :func:`aim64` (for tests and for reading a URL someone shared)."""
    if not value.startswith("O-"):
        raise ValueError(f"not an aim64 value (no 'O-' prefix): {value[:20]!r}")
    body = value[2:]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def explorer_url(query: str, grouping: dict, chart: dict, base: str = DEFAULT_BASE) -> str:
    select = {"advancedMode": True, "advancedQuery": query, "query": "", "options": []}
    parameters = {"select": aim64(select), "grouping": aim64(grouping), "chart": aim64(chart)}
    return f"{base.rstrip('/')}/metrics?{urlencode(parameters)}"


def loss_explorer_url(base: str = DEFAULT_BASE) -> str:
    """The per-block loss comparison: each term in its own chart, a colour per block."""
    return explorer_url(LOSS_QUERY, LOSS_GROUPING, LOSS_CHART, base)
