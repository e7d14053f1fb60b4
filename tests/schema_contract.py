"""What a JSON Schema of ours means, without how one generator version writes it.

``contract(schema)`` keeps every message, field, type, bound, default, required list and enumeration
(values and names) and drops the prose (``title``, ``description``), so a committed schema compared with
the protocol module through it fails on a change of the protocol, not on a change of msgspec's formatting
(msgspec 0.23 dedents docstrings and orders keys differently from 0.19; the wire is the same).
"""

from __future__ import annotations

PROSE = {"title", "description", "$comment"}
UNORDERED = {"required"}  # lists whose order carries no meaning


def contract(node):
    """``node`` with its prose removed, recursively; unordered lists sorted. O(size of the schema)."""
    if isinstance(node, dict):
        return {k: sorted(v) if k in UNORDERED else contract(v) for k, v in node.items() if k not in PROSE}
    if isinstance(node, list):
        return [contract(v) for v in node]
    return node
