"""The dependency graph view's layout: jobs in columns by how many dependencies lead to
them (a job is always right of what it depends on), drawn as one SVG. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

NODE_W, NODE_H = 190, 54
GAP_X, GAP_Y = 70, 24
PAD = 12
LABEL_CHARS = 24  # a longer name is cut, with an ellipsis


@dataclass(frozen=True)
class Node:
    job_id: str
    name: str
    status: str
    detail: str = ""  # an array's "7/10 done"
    href: str = ""


def columns(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Each node's column: the longest chain of edges (dependency, dependent) into it.
    Batch refuses cycles at SubmitJob, but a cycle here (a partial view) must not loop:
    a node's column is settled after at most len(nodes) rounds."""
    column = dict.fromkeys(nodes, 0)
    known = [(a, b) for a, b in edges if a in column and b in column and a != b]
    for _ in range(len(nodes)):
        changed = False
        for a, b in known:
            if column[b] < column[a] + 1 and column[a] + 1 < len(nodes):
                column[b] = column[a] + 1
                changed = True
        if not changed:
            break
    return column


def layout(nodes: list[Node], edges: list[tuple[str, str]]) -> dict[str, tuple[int, int]]:
    """Top-left corner of each node: columns left to right, in a column by name then ID."""
    column = columns([n.job_id for n in nodes], edges)
    rows: dict[int, int] = {}
    out: dict[str, tuple[int, int]] = {}
    for node in sorted(nodes, key=lambda n: (column[n.job_id], n.name, n.job_id)):
        c = column[node.job_id]
        r = rows.get(c, 0)
        rows[c] = r + 1
        out[node.job_id] = (PAD + c * (NODE_W + GAP_X), PAD + r * (NODE_H + GAP_Y))
    return out


def svg(nodes: list[Node], edges: list[tuple[str, str]], focus: str) -> str:
    """The graph as inline SVG; each node links to its job page and carries its job ID
    and status as data attributes (what a test or a script can read back)."""
    at = layout(nodes, edges)
    width = max((x for x, _ in at.values()), default=0) + NODE_W + PAD
    height = max((y for _, y in at.values()), default=0) + NODE_H + PAD
    parts = [f'<svg id="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="dependency graph">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#667"/></marker></defs>']
    for a, b in edges:
        if a in at and b in at:
            (x1, y1), (x2, y2) = at[a], at[b]
            sx, sy, ex, ey = x1 + NODE_W, y1 + NODE_H // 2, x2, y2 + NODE_H // 2
            mid = (sx + ex) // 2
            parts.append(f'<path class="edge" data-from="{escape(a)}" data-to="{escape(b)}" '
                         f'd="M {sx} {sy} C {mid} {sy}, {mid} {ey}, {ex} {ey}" fill="none" stroke="#667" '
                         'stroke-width="1.5" marker-end="url(#arrow)"/>')
    for node in nodes:
        x, y = at[node.job_id]
        cls = f"node s-{escape(node.status)}" + (" focus" if node.job_id == focus else "")
        label = node.name if len(node.name) <= LABEL_CHARS else node.name[:LABEL_CHARS - 1] + "…"
        second = node.status + (f" · {node.detail}" if node.detail else "")
        parts.append(
            f'<a href="{escape(node.href)}"><g class="{cls}" data-job-id="{escape(node.job_id)}" '
            f'data-status="{escape(node.status)}" data-name="{escape(node.name)}" transform="translate({x},{y})">'
            f'<rect width="{NODE_W}" height="{NODE_H}" rx="8"/>'
            f'<text x="10" y="22" class="name">{escape(label)}</text>'
            f'<text x="10" y="42" class="status">{escape(second)}</text></g></a>')
    parts.append("</svg>")
    return "".join(parts)
