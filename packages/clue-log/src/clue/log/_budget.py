"""The memory bounds of buffering: a per-context bound and a process-wide budget.

Each buffered entry carries an estimate of its size made at the call (``ENTRY_BYTES``
for the record itself, plus strings and bytes by length and containers by a shallow
size; never a render). A context keeps its entries within three bounds: ``max_buffered``
entries, ``max_buffered_bytes`` estimated bytes, and its share of the process-wide
``max_total_buffered_bytes``. Past one, the context that is appending drops its own
oldest entries (counted in its dropped marker and in ``clue.log.entries{dropped}``).

The process-wide budget is a pool of ``GRANT``-byte tokens. A context takes one when it
opens and more when it outgrows what it holds (at least doubling it), and gives them all
back when it is flushed or ends. Taking and giving back are single deque operations,
exact between threads without a lock; the buffered call itself reads and writes one
counter (``room``: bytes it may still buffer, at most ``ENTRY_BYTES`` a free slot, so the
same counter runs out when the buffer is full by count), and a context goes to the pool
a few times in its life.

Threads share a context (``copy_context().run``, ``asyncio.to_thread``). The buffered call
claims its bytes from ``room`` and appends with no call in between, so under the GIL no
other thread runs between the two: a claim and its entry are seen together. Everything
past the counter (``tight``, ``admit``) and a drain hold ``lock`` and first seize ``room``
(set it to ``SEIZED``), so a call meanwhile finds no room and waits for the lock there.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from itertools import repeat
from typing import Any, Protocol

from clue.log import _metrics
from clue.log._kv import KV
from clue.log._metrics import FOLD_AT as _FOLD_AT
from clue.log._metrics import added_contexts_discarded as _added_contexts_discarded
from clue.log._metrics import added_contexts_written as _added_contexts_written
from clue.log._metrics import added_entries_discarded as _added_entries_discarded
from clue.log._metrics import added_entries_dropped as _added_entries_dropped
from clue.log._metrics import added_entries_written as _added_entries_written
from clue.log._state import state


class Request(Protocol):
    """What the budget reads and sets on a log context's shared state (``_context``)."""

    buf: deque[Any] | None
    counted: bool
    limit: int
    room: int
    aside: int
    lost: int
    units: int
    gen: int
    epoch: int
    written: int
    dropped: int
    wrote: bool


#: The estimated cost of one buffered record besides its strings and containers: the
#: record tuple, its keyword dict and timestamp, and the buffer's slot.
ENTRY_BYTES = 256
#: What a context reserves from the process-wide budget first (the pool's token size for
#: bounds up to ``MAX_TOKENS`` of them); each later reservation at least doubles it.
GRANT = 4096
#: At most this many tokens in the pool: a larger bound makes larger tokens, so what the
#: pool costs does not grow with the bound.
MAX_TOKENS = 1 << 16

# Each with its own ``__len__``: a subclass's may say anything.
_SIZED_BY_LEN: tuple[tuple[type, Callable[[Any], int]], ...] = (
    (str, str.__len__), (bytes, bytes.__len__), (bytearray, bytearray.__len__),
)  # fmt: skip
_CONTAINERS: tuple[tuple[type, Callable[[Any], int]], ...] = (
    (list, list.__len__), (tuple, tuple.__len__), (dict, dict.__len__),
    (set, set.__len__), (frozenset, frozenset.__len__),
)  # fmt: skip
# Values that add nothing beyond ``ENTRY_BYTES``: their objects are small (or shared), and
# telling them apart is one set lookup on the hot path. An int with thousands of digits is
# counted as an ordinary one (one parsed from text has at most 4,300: about 1.8 KiB).
_FIXED = frozenset({int, float, bool, type(None)})


class Budget:
    """The process-wide budget: a pool of tokens of ``grant`` bytes each."""

    __slots__ = ("capacity", "debt", "gen", "grant", "max_total", "pool")

    def __init__(self) -> None:
        # Bumped when the pool is made anew (a new token size, a forked child): tokens
        # taken from an older pool are not given back to this one.
        self.gen = 0
        self.max_total = 0
        self.capacity = 0
        self.grant = GRANT
        self.pool: deque[int] = deque()
        # Tokens open contexts hold beyond a smaller new bound: each one given back
        # settles one of these instead of going back to the pool.
        self.debt: deque[int] = deque()
        self.resize(256 * 1024 * 1024)

    def resize(self, max_total: int, *, keep: bool = True) -> None:
        """Bound the pool by ``max_total`` bytes, counting what open contexts hold.

        With ``keep`` false (a forked child), or when the token size changes, the pool is
        made anew and what older contexts hold is forgotten.
        """
        grant = max(GRANT, -(-max_total // MAX_TOKENS))
        capacity = max(1, max_total // grant)
        taken = self.capacity - len(self.pool) + len(self.debt) if self.capacity else 0
        if not keep or grant != self.grant or not self.capacity:
            self.gen += 1
            self.grant = grant
            taken = 0
        self.max_total = max_total
        self.capacity = capacity
        self.pool = deque(repeat(self.gen, max(0, capacity - taken)))
        self.debt = deque(repeat(self.gen, max(0, taken - capacity)))


budget = Budget()
#: Held past the hot path's counter and while a buffer is drained (never while writing).
#: Reentrant: a finalizer that logs may run while it is held (see ``tight``).
lock = threading.RLock()
#: ``room`` while a holder of ``lock`` works on a context: no call finds room in it.
SEIZED = -(1 << 62)


# No thread holds ``lock`` across a fork, so the child's counters are whole; the child
# gets a lock of its own (looked up when called: a child's child forks with its own).
def _lock_before_fork() -> None:
    lock.acquire()


def _lock_after_fork_in_parent() -> None:
    lock.release()


def _lock_after_fork() -> None:
    global lock  # noqa: PLW0603 - the child's own lock, as the other modules' locks
    lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_lock_before_fork,
        after_in_parent=_lock_after_fork_in_parent,
        after_in_child=_lock_after_fork,
    )
#: Bumped in a forked child: a context of the parent that ends in the child is the
#: parent's to count (the one the forking thread goes on with excepted).
fork_epoch = [0]


def set_total(max_total: int) -> None:
    """Bound all contexts together by ``max_total`` estimated bytes (``configure``)."""
    if max_total != budget.max_total:
        budget.resize(max_total)


def size_of(v: Any) -> int:
    """A cheap estimate of what a value adds to a buffered entry beyond ``ENTRY_BYTES``.

    Numbers, booleans and None add nothing, strings and bytes count by length, containers
    by a shallow size (subclasses by their base's length), a ``KV`` by its key and value,
    anything else by ``sys.getsizeof``.
    The buffered call's hot path (``_api``) makes the same estimate inline.
    """
    try:
        t = type(v)
        if t is str:
            return len(v)
        if t in _FIXED:
            return 0
        # A subclass is measured by its base's ``__len__``, never by its own (which may
        # say anything).
        for base, length in _SIZED_BY_LEN:
            if isinstance(v, base):
                return length(v)
        if isinstance(v, KV):  # before containers: a KV is a tuple, its value a value
            return size_of(v.k) + size_of(v.v)
        for base, length in _CONTAINERS:
            if isinstance(v, base):
                return 56 + 8 * length(v)
        return int(sys.getsizeof(v))
    except Exception:  # a hostile value is estimated as a small object
        return 64


def size_of_all(values: Any) -> int:
    """The estimate of several values (``size_of`` each)."""
    return sum([size_of(v) for v in values])


def size_of_arg(a: Any) -> int:
    """The estimate of a positional argument (or the message).

    A mapping given positionally (``Fields``) holds key/values: each of its values counts
    as a keyword's would, besides the mapping's shallow size; anything else is ``size_of``.
    """
    try:
        if isinstance(a, dict):
            return 56 + 8 * dict.__len__(a) + sum([size_of(v) for v in a.values()])
    except Exception:  # noqa: S110 - a mapping whose values() raise: its shallow size
        pass
    return size_of(a)


def size_of_args(args: Any) -> int:
    """The estimate of positional arguments (``size_of_arg`` each)."""
    return sum([size_of_arg(a) for a in args])


def record_size(rec: Any) -> int:
    """The estimate of a buffered record.

    A native record's is ``ENTRY_BYTES`` plus what it carries at index 8 (kept apart so
    that it is a small, shared int for most entries); other records (structlog's) say
    theirs as ``size``.
    """
    if type(rec) is tuple:
        return ENTRY_BYTES + rec[8]  # type: ignore[no-any-return]
    size: int = getattr(rec, "size", 0)
    return size


def append(req: Request, buf: deque[Any], rec: Any, size: int) -> None:
    """Buffer ``rec`` of ``size`` estimated bytes within the context's bounds.

    ``size`` includes ``ENTRY_BYTES``. The hot path's one counter comes first, then
    ``tight`` past it.
    """
    room = req.room - size
    if room >= 0:
        # Claimed, then appended, with no call in between (see the module's docstring).
        req.room = room
        buf.append(rec)
    else:
        tight(req, buf, rec, size)


def set_room(req: Request, buf: deque[Any], room: int) -> None:
    """Set the hot path's counter from ``room``, the bytes the context may still buffer.

    The counter gets at most ``ENTRY_BYTES`` a free slot of the buffer (every entry is at
    least that), so it runs out before the buffer is full by count; the rest is kept aside.
    """
    cap = ((buf.maxlen or 0) - len(buf) + 1) * ENTRY_BYTES - 1
    # ``aside`` first: setting ``room`` lets calls in again.
    if room > cap:
        req.aside = room - cap
        req.room = cap
    else:
        req.aside = 0
        req.room = room


def tight(req: Request, buf: deque[Any], rec: Any, size: int) -> None:
    """Buffer ``rec`` past the hot path's counter.

    In a buffer full by count whose bytes it fits, the oldest entry is dropped for it and
    its size given back; past the bytes the context holds, ``admit`` decides. Every call
    into a full buffer comes here: written for speed, in one function.
    """
    with lock:
        room = req.room
        if room == SEIZED:
            # Called back while this thread works on the context (a finalizer or a signal
            # handler that logs): dropped, and counted.
            req.lost += 1
            return
        req.room = SEIZED
        left = room + req.aside - size
        if left < 0:
            _admit(req, buf, rec, size, room)
            return
        free = (buf.maxlen or 0) - len(buf)
        if free <= 0:  # full by count: the oldest goes for this one
            try:
                old = buf.popleft()
                left += ENTRY_BYTES + old[8] if type(old) is tuple else record_size(old)
                req.lost += 1
            except IndexError:  # emptied meanwhile, by a flush called back on this thread
                pass
            free = 1
        buf.append(rec)
        # ``set_room`` written inline; ``room`` last, as it lets calls in again.
        cap = free * ENTRY_BYTES - 1
        if left > cap:
            req.aside = left - cap
            req.room = cap
        else:
            req.aside = 0
            req.room = left


def admit(req: Request, buf: deque[Any], rec: Any, size: int) -> None:
    """Buffer ``rec`` past what the context holds (see ``_admit``)."""
    with lock:
        room = req.room
        if room == SEIZED:  # called back while this thread works on it, as in ``tight``
            req.lost += 1
            return
        req.room = SEIZED
        _admit(req, buf, rec, size, room)


def seize(req: Request) -> None:
    """Hold a context's counter while ``lock`` is held: calls meanwhile find no room."""
    req.room = SEIZED


def _take(req: Request, units: int) -> None:
    # Take up to ``units`` more tokens for ``req`` (fewer when the pool runs out): one
    # atomic pop each, counted once at the end.
    pop = budget.pool.pop
    got = 0
    try:
        while got < units:
            pop()
            got += 1
    except IndexError:  # the pool ran out
        pass
    req.units += got


def _admit(req: Request, buf: deque[Any], rec: Any, size: int, room: int) -> None:
    # Buffer ``rec`` past what the context holds, with ``lock`` held and the counter
    # seized (``room`` is what it read). Take more tokens if the context may, else drop
    # the context's own oldest entries until ``rec`` fits; ``rec`` alone is dropped when
    # it cannot fit even in an empty buffer. Every drop counts in ``lost``.
    b = budget
    if req.gen != b.gen:  # tokens of an older pool (a fork, a new bound): start over
        req.gen = b.gen
        req.units = 0
    nbytes = req.limit - room - req.aside
    need = nbytes + size
    most = state.max_buffered_bytes
    grant = b.grant
    held = req.units * grant
    if need > held and held < most:
        # At least double what it holds: a context that keeps growing comes back here
        # a few times, not once per token.
        target = min(max(-(-need // grant), 2 * req.units), -(-most // grant))
        _take(req, target - req.units)
    limit = min(most, req.units * grant)
    if size <= limit:
        lost = 0
        if len(buf) == buf.maxlen and buf:  # at max_buffered entries: the oldest goes first
            nbytes -= record_size(buf.popleft())
            lost += 1
        while nbytes + size > limit and buf:
            nbytes -= record_size(buf.popleft())
            lost += 1
        buf.append(rec)
        nbytes += size
        req.lost += lost
    else:  # larger than all this context may hold: dropped alone, the rest kept
        req.lost += 1
    req.limit = limit
    set_room(req, buf, limit - nbytes)


def drained(req: Request, buf: deque[Any]) -> int:
    """The entries dropped since the last drain, now that ``buf`` was emptied.

    The next buffered call goes to ``admit``, which sets the counters again.
    """
    dropped = req.lost
    req.lost = 0
    req.limit = req.aside = 0
    req.room = 0
    return dropped


def release(req: Request) -> None:
    """Give back every token a context holds (flushed or ended: it buffers no more)."""
    with lock:
        req.room = SEIZED
        units = req.units
        if units:
            req.units = 0
            b = budget
            if req.gen == b.gen:
                _give_back(b, units)
        req.limit = req.aside = 0
        req.room = 0


def _give_back(b: Budget, units: int) -> None:
    # Settle what a smaller new bound left owing first, then refill the pool.
    debt = b.debt
    while units and debt:
        try:
            debt.pop()
        except IndexError:
            break
        units -= 1
    if units:
        b.pool.extend(repeat(b.gen, units))


def ended(req: Request) -> None:
    """An ended context's finalizer (``Request.__del__``).

    Give its tokens back and count its outcome. Never raises, never waits: single deque
    and list operations, no lock. Written inline for speed, as it runs once per context:
    a context that wrote nothing and dropped nothing (a successful request) gives its one
    token back and appends one count.
    """
    if not req.counted or req.epoch != fork_epoch[0]:
        return  # not a context that buffered, or one of a parent process
    try:
        units = req.units
        if units:
            b = budget
            if req.gen == b.gen:
                if b.debt:
                    _give_back(b, units)
                elif units == 1:
                    b.pool.append(b.gen)
                else:
                    b.pool.extend(repeat(b.gen, units))
        buf = req.buf
        if buf is None:
            _added_contexts_written.append(1)
            dropped = req.dropped
        elif req.wrote:
            _added_contexts_written.append(1)
            kept = len(buf)
            if kept:
                _added_entries_discarded.append(kept)
            dropped = req.dropped + req.lost
        else:
            _added_contexts_discarded.append(len(buf))  # the context and its entries
            if len(_added_contexts_discarded) > _FOLD_AT:
                _metrics.fold_soon()
            dropped = req.dropped + req.lost
            if not dropped:
                return  # nothing was written (``written`` is 0) and nothing dropped
        if dropped > 0:
            _added_entries_dropped.append(dropped)
        if req.written:
            _added_entries_written.append(req.written)
        if len(_added_contexts_written) > _FOLD_AT:
            _metrics.fold_soon()
    except Exception:  # noqa: S110 - a finalizer never raises
        pass


def held() -> int:
    """The bytes open contexts hold of the budget: what ``clue.log.buffered.bytes`` reads."""
    b = budget
    return max(0, b.capacity - len(b.pool) + len(b.debt)) * b.grant


def reset_after_fork(req: Request | None) -> None:
    """In a forked child: a full pool, the parent's tokens void.

    ``req`` is the context current in the forking thread (``_context`` registers the hook):
    it goes on in the child, so it takes again what it held; any other context of the
    parent the child still holds takes tokens anew when it next outgrows what it had.
    """
    budget.resize(budget.max_total, keep=False)
    fork_epoch[0] += 1
    if req is not None:
        # What the parent wrote and dropped before the fork is the parent's to count:
        # the child counts from here (its marker still says every drop).
        req.epoch = fork_epoch[0]
        req.written = 0
        req.wrote = False
        req.dropped = -req.lost
        if req.units:
            units, req.units, req.gen = req.units, 0, budget.gen
            _take(req, units)


_metrics.buffered = held
