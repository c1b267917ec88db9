"""Pictures of one architecture: an SVG for the web page and a few lines of text for the terminal.

A topology cell (NAS-Bench-201) is a 4-node DAG whose 6 edges each carry an op; it is drawn with the
nodes on a line, edges between neighbours straight, the two 2-hop edges as arcs above and the
input-to-output edge as an arc below, each labelled and coloured by its op (``none`` edges, which
carry nothing, are faint and dashed). A size configuration is 5 channel widths, drawn as a profile
of bars whose heights are the widths.

The SVG holds nothing but what this module writes from the space's own names, so the page can put it
in the DOM as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from natsbench_gym.spaces import SIZE_WIDTHS, TOPOLOGY_EDGES, TOPOLOGY_OPS, SearchSpace
from natsbench_gym.types import SpaceKind

__all__ = ["architecture_svg", "architecture_lines", "OP_LABELS", "OP_COLORS"]

#: How each topology op is named for people.
OP_LABELS: dict[str, str] = {
    "none": "none",
    "skip_connect": "skip",
    "nor_conv_1x1": "conv 1×1",
    "nor_conv_3x3": "conv 3×3",
    "avg_pool_3x3": "avg pool 3×3",
}

#: Colour of each op (colour-blind-safe Okabe-Ito hues).
OP_COLORS: dict[str, str] = {
    "none": "#b8bec7",
    "skip_connect": "#6b7280",
    "nor_conv_1x1": "#0072b2",
    "nor_conv_3x3": "#7b3fa0",
    "avg_pool_3x3": "#d55e00",
}

_NODE_X = (36.0, 166.0, 296.0, 426.0)
_NODE_Y = 92.0
_NODE_R = 15.0
_WIDTH, _HEIGHT = 462, 184
#: Bulge of each edge's arc by the number of nodes it skips: neighbours straight, 2 hops above, 3 below.
_BULGE = {1: 0.0, 2: -58.0, 3: 70.0}


def architecture_svg(space: SearchSpace, encoding: Sequence[int], *, title: str = "") -> str:
    """An SVG drawing of ``encoding`` in ``space`` (a topology cell or a size configuration).

    Args:
        space: the search space the encoding belongs to.
        encoding: a valid encoding of ``space``.
        title: the SVG's accessible title (default: the official string).
    """
    enc = space.validate(encoding)
    title = title or space.format(enc)
    if space.kind is SpaceKind.TOPOLOGY:
        return _topology_svg(enc, title)
    return _size_svg(enc, title)


def architecture_lines(space: SearchSpace, encoding: Sequence[int]) -> list[str]:
    """The same architecture as short lines of plain text (for the terminal UI)."""
    enc = space.validate(encoding)
    if space.kind is SpaceKind.TOPOLOGY:
        lines = []
        for node in (1, 2, 3):
            inputs = [
                f"{OP_LABELS[TOPOLOGY_OPS[op]]} ← {_node_name(src)}"
                for (dst, src), op in zip(TOPOLOGY_EDGES, enc, strict=True)
                if dst == node
            ]
            lines.append(f"{_node_name(node):>6}: " + ", ".join(inputs))
        return lines
    widths = [SIZE_WIDTHS[i] for i in enc]
    return ["channels: " + " → ".join(str(w) for w in widths)]


def _node_name(node: int) -> str:
    return {0: "input", 3: "output"}.get(node, f"node {node}")


def _topology_svg(enc: tuple[int, ...], title: str) -> str:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {_HEIGHT}" class="cell" role="img">',
        f"<title>{escape(title)}</title>",
        "<defs>",
    ]
    for op, color in OP_COLORS.items():
        parts.append(
            f'<marker id="arrow-{op}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>'
        )
    parts.append("</defs>")
    labels = []
    # Draw "none" edges first so real ops lie on top of them.
    edges = sorted(zip(TOPOLOGY_EDGES, enc, strict=True), key=lambda item: TOPOLOGY_OPS[item[1]] != "none")
    for (dst, src), op_id in edges:
        op = TOPOLOGY_OPS[op_id]
        x1, x2 = _NODE_X[src] + _NODE_R, _NODE_X[dst] - _NODE_R - 2
        bulge = _BULGE[dst - src]
        if bulge == 0.0:
            path = f"M{x1:.1f},{_NODE_Y:.1f} L{x2:.1f},{_NODE_Y:.1f}"
            lx, ly = (x1 + x2) / 2, _NODE_Y
        else:
            # Leave and enter the nodes on the side the arc bulges to.
            sign = -1.0 if bulge < 0 else 1.0
            sx, sy = _NODE_X[src] + _NODE_R * 0.6, _NODE_Y + sign * _NODE_R * 0.8
            ex, ey = _NODE_X[dst] - _NODE_R * 0.6 - 1, _NODE_Y + sign * _NODE_R * 0.8 + sign * 1.5
            cx, cy = (sx + ex) / 2, _NODE_Y + 2 * bulge
            path = f"M{sx:.1f},{sy:.1f} Q{cx:.1f},{cy:.1f} {ex:.1f},{ey:.1f}"
            lx, ly = cx, _NODE_Y + bulge
        dashed = ' stroke-dasharray="4 4"' if op == "none" else ""
        width = 1.4 if op == "none" else 2.4
        parts.append(
            f'<path d="{path}" fill="none" stroke="{OP_COLORS[op]}" stroke-width="{width}"{dashed} '
            f'marker-end="url(#arrow-{op})"><title>{_node_name(src)} → {_node_name(dst)}: {escape(OP_LABELS[op])}</title></path>'
        )
        labels.append(_edge_label(lx, ly, op))
    parts.extend(labels)
    for node, x in enumerate(_NODE_X):
        fill = "#1f2937" if node in (0, 3) else "#ffffff"
        ink = "#ffffff" if node in (0, 3) else "#1f2937"
        parts.append(
            f'<circle cx="{x:.1f}" cy="{_NODE_Y:.1f}" r="{_NODE_R:.1f}" fill="{fill}" stroke="#1f2937" stroke-width="1.6"/>'
            f'<text x="{x:.1f}" y="{_NODE_Y + 4:.1f}" text-anchor="middle" font-size="12" font-weight="600" '
            f'fill="{ink}">{node}</text>'
        )
    parts.append(
        f'<text x="{_NODE_X[0]:.1f}" y="{_NODE_Y + 34:.1f}" text-anchor="middle" class="node-caption">in</text>'
        f'<text x="{_NODE_X[3]:.1f}" y="{_NODE_Y + 34:.1f}" text-anchor="middle" class="node-caption">out</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _edge_label(x: float, y: float, op: str) -> str:
    text = OP_LABELS[op]
    width = 7.0 + 6.2 * len(text)
    color = "#9aa1ab" if op == "none" else OP_COLORS[op]
    return (
        f'<rect x="{x - width / 2:.1f}" y="{y - 9:.1f}" width="{width:.1f}" height="17" rx="8.5" '
        f'fill="#ffffff" stroke="{color}" stroke-width="1"/>'
        f'<text x="{x:.1f}" y="{y + 3.6:.1f}" text-anchor="middle" font-size="10.5" fill="{color}">{escape(text)}</text>'
    )


def _size_svg(enc: tuple[int, ...], title: str) -> str:
    widths = [SIZE_WIDTHS[i] for i in enc]
    top, bottom, max_h = 20.0, 150.0, 118.0
    mid = (top + bottom) / 2
    step = _WIDTH / len(widths)
    bar_w = step * 0.42
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {_HEIGHT}" class="cell" role="img">',
        f"<title>{escape(title)}</title>",
    ]
    boxes = []
    for layer, width in enumerate(widths):
        h = max_h * width / max(SIZE_WIDTHS)
        x = step * layer + (step - bar_w) / 2
        boxes.append((x, mid - h / 2, h))
    # Faint bands between consecutive layers show how the width changes along the network.
    for (x0, y0, h0), (x1, y1, h1) in zip(boxes, boxes[1:], strict=False):
        parts.append(
            f'<polygon points="{x0 + bar_w:.1f},{y0:.1f} {x1:.1f},{y1:.1f} {x1:.1f},{y1 + h1:.1f} '
            f'{x0 + bar_w:.1f},{y0 + h0:.1f}" fill="#0072b2" fill-opacity="0.10"/>'
        )
    for layer, ((x, y, h), width) in enumerate(zip(boxes, widths, strict=True)):
        opacity = 0.35 + 0.65 * width / max(SIZE_WIDTHS)
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" rx="3" fill="#0072b2" '
            f'fill-opacity="{opacity:.2f}"><title>layer {layer}: {width} channels</title></rect>'
            f'<text x="{x + bar_w / 2:.1f}" y="{y - 5:.1f}" text-anchor="middle" font-size="12" font-weight="600" '
            f'fill="#1f2937">{width}</text>'
            f'<text x="{x + bar_w / 2:.1f}" y="{bottom + 22:.1f}" text-anchor="middle" class="node-caption">layer {layer}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
