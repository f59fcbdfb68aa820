"""Verifying the audit trail's hash chain (migration 0007): one walk in id order, in bounded chunks, in one snapshot.

Each row carries prev_hash and row_hash = audit_row_hash(prev_hash, the row's columns). The walk
starts at the newest checkpoint (where the last purge ended, or where the chain began) and checks
that every row's prev_hash is the previous row's row_hash (a DELETE or an INSERT breaks that link),
that its row_hash matches its content (an UPDATE breaks that), and that the last row is the chain
head (a DELETE of the tail). Ids may have gaps (rolled-back inserts burn sequence values), so
missing rows are found by the links, never by ids. The first break is reported, naming its row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import asyncpg

from db import sql

CHAIN_STATE = sql.statement("audit_chain_state")
CHAIN_ROWS = sql.statement("audit_chain_rows")
CHUNK = 10_000  # rows per round trip: about 1 MB of hashes, whatever the size of the rows
_ANCHOR = re.compile(r"([0-9]+):([0-9a-fA-F]{64})")


@dataclass(frozen=True)
class Anchor:
    """A row id and its hash recorded outside the database (an earlier `audit verify` prints one)."""

    id: int
    hash: bytes

    @classmethod
    def parse(cls, text: str) -> Anchor:
        match = _ANCHOR.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"anchor {text!r} must be ID:HASH, the HASH 64 hex digits (as `audit verify` prints)")
        return cls(int(match.group(1)), bytes.fromhex(match.group(2)))

    def __str__(self) -> str:
        return f"{self.id}:{self.hash.hex()}"


@dataclass(frozen=True)
class Report:
    """What a walk found: `problem` is None for an intact trail, else one line naming the first broken row."""

    problem: str | None
    rows: int  # chained rows checked
    first_id: int | None
    head: Anchor | None
    checkpoint_id: int
    chain_start_id: int
    unchained: int  # rows from before the chain began, which it cannot vouch for

    @property
    def intact(self) -> bool:
        return self.problem is None


async def verify(conn: asyncpg.Connection, anchor: Anchor | None = None, chunk: int = CHUNK) -> Report:
    """Walk the whole chain from the newest checkpoint to the head; never more than `chunk` rows in memory."""
    # One snapshot for the whole walk: appends and purges carry on meanwhile, and none of them can
    # make the part already read disagree with the part still to read.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        state = await sql.fetchrow(conn, CHAIN_STATE)
        if state is None:
            return Report("the chain head or its starting checkpoint is missing", 0, None, None, 0, 0, 0)
        walk = _Walk(state, anchor)
        problem = walk.start()
        after = state["through_id"]
        while problem is None:
            rows = await sql.fetch(conn, CHAIN_ROWS, after, chunk)
            for row in rows:
                problem = walk.feed(row)
                if problem:
                    break
            if len(rows) < chunk:
                break
            after = rows[-1]["id"]
        problem = problem or walk.finish()
    head = Anchor(state["head_id"], bytes(state["head_hash"]))
    return Report(
        problem, walk.rows, walk.first_id, head, state["through_id"], state["chain_start_id"], state["unchained"]
    )


class _Walk:
    """The checks, fed one row at a time in id order; each returns None or the problem found."""

    def __init__(self, state, anchor: Anchor | None):
        self.checkpoint_id = state["through_id"]
        self.chain_started = state["reason"] == "chain start"
        self.head_id = state["head_id"]
        self.head = (state["head_id"], bytes(state["head_hash"]))
        self.inside_prefix = state["inside_prefix"]
        self.anchor = anchor
        self.prev = (state["through_id"], bytes(state["through_hash"]))  # the link the next row must carry
        self.before_prev: tuple[int, bytes] | None = None
        self.suspect: _Suspect | None = None  # a row that breaks the chain: the row after it tells how
        self.rows = 0
        self.first_id: int | None = None

    def start(self) -> str | None:
        if self.inside_prefix is not None:
            return (
                f"row {self.inside_prefix} lies inside the purged prefix (rows through id {self.checkpoint_id} "
                "were purged): it was inserted outside the service"
            )
        if self.anchor and self.anchor.id > self.head_id:
            return (
                f"the anchored row {self.anchor.id} lies beyond the chain head (row {self.head_id}): "
                "rows were lost (a restore or failover) or the chain was rewritten"
            )
        if self.anchor and self.anchor.id == self.checkpoint_id and self.anchor.hash != self.prev[1]:
            return f"the purge checkpoint at row {self.checkpoint_id} does not carry the anchored hash"
        return None

    def feed(self, row) -> str | None:
        if self.suspect is not None:
            return self._explain(row)
        row_id, prev_hash, row_hash = row["id"], _bytes(row["prev_hash"]), _bytes(row["row_hash"])
        if row_id > self.head_id:
            return f"row {row_id} lies beyond the chain head (row {self.head_id}): it was inserted outside the service"
        if prev_hash != self.prev[1]:
            if self.before_prev is not None and prev_hash == self.before_prev[1]:
                return (
                    f"row {self.prev[0]} was inserted outside the service: row {row_id} chains from "
                    f"{self._name(self.before_prev[0])}, not from it"
                )
            self.suspect = _Suspect(row_id, prev_hash, row_hash, row["content_ok"], linked=False)
            return None
        if not row["content_ok"]:
            self.suspect = _Suspect(row_id, prev_hash, row_hash, content_ok=False, linked=True)
            return None
        if self.anchor and self.prev[0] < self.anchor.id <= row_id:
            if row_id != self.anchor.id:
                return f"the anchored row {self.anchor.id} is gone: the chain was rewritten at or before it"
            if row_hash != self.anchor.hash:
                return f"row {row_id} no longer carries the anchored hash: the chain was rewritten at or before it"
        self.before_prev, self.prev = self.prev, (row_id, row_hash)
        self.rows += 1
        if self.first_id is None:
            self.first_id = row_id
        return None

    def _explain(self, following) -> str:
        """Why the suspect row breaks the chain, judged by the row after it (None: it was the last)."""
        bad, expected = self.suspect, self.prev
        next_prev = _bytes(following["prev_hash"]) if following is not None else None
        followed = (following is not None and next_prev == bad.row_hash) or (
            following is None and (bad.id, bad.row_hash) == self.head
        )
        if next_prev == expected[1]:
            return (
                f"row {bad.id} was inserted outside the service: row {following['id']} chains from "
                f"{self._name(expected[0])}, past it"
            )
        if bad.linked:  # its link fits, its hash does not
            if followed:
                return f"row {bad.id} was changed after it was written: its content no longer matches its hash"
            return f"row {bad.id} does not match its hash: it was changed, or inserted, outside the service"
        if bad.content_ok and followed:
            return (
                f"rows between {self._name(expected[0])} and row {bad.id} were deleted: "
                f"row {bad.id} does not chain from {self._name(expected[0])}"
            )
        if followed:  # the next row vouches for its stored hash: its link (part of the hash) was edited
            return f"row {bad.id} was changed after it was written: its link and its hash no longer fit"
        return (
            f"row {bad.id} does not chain from {self._name(expected[0])}: rows between them were deleted, "
            f"or row {bad.id} was inserted or changed outside the service"
        )

    def finish(self) -> str | None:
        if self.suspect is not None:
            return self._explain(None)
        last_id, last_hash = self.prev
        if last_id < self.head_id:
            return (
                f"rows after {self._name(last_id)} are missing: the chain head is row {self.head_id} "
                "(deleted outside the service)"
            )
        if last_hash != self.head[1]:
            return f"row {last_id} does not match the chain head's hash: the chain was rewritten"
        if self.anchor and self.anchor.id > last_id:
            return f"the anchored row {self.anchor.id} is gone: the chain was rewritten"
        return None

    def _name(self, row_id: int) -> str:
        if row_id != self.checkpoint_id:
            return f"row {row_id}"
        return "the start of the chain" if self.chain_started else f"the purge checkpoint after row {row_id}"


@dataclass(frozen=True)
class _Suspect:
    id: int
    prev_hash: bytes | None
    row_hash: bytes | None
    content_ok: bool
    linked: bool  # its prev_hash is the previous row's hash


def _bytes(value) -> bytes | None:
    return bytes(value) if value is not None else None
