"""A declarative status machine: states, allowed moves, who may make them, and one ``move``.

A plugin whose rows have a life cycle (a ticket: new → open → waiting → resolved → closed)
declares it as data instead of scattering ``if status == ...`` checks::

    TICKET = StateMachine(
        "service_ticket", states=("new", "open", "waiting", "resolved", "closed"),
        transitions=[("new", "open"), ("open", "waiting"), ("waiting", "open"),
                     ("open", "resolved"), ("resolved", "closed", "service.close")],
        source="service")

    move(uow, ticket, "waiting", reason="asked for the invoice number")

:func:`move` checks the transition's permission, refuses an illegal move with one line that
lists where the row may go (:class:`IllegalMove`, exit 1), sets the status, writes an audit
entry (``move``, before/after status, reason) and logs an interaction on the row's customer so
the move shows on the customer's timeline. Everything happens in the caller's unit of work:
if anything later fails, the move is rolled back with it.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from crmcore.errors import Conflict

if TYPE_CHECKING:
    from crmcore.uow import UnitOfWork

__all__ = ["IllegalMove", "StateMachine", "Transition", "move"]


class IllegalMove(Conflict):
    """The row cannot go to that status from its current one; nothing was written (exit 1)."""


@dataclass(frozen=True)
class Transition:
    """One allowed move; ``permission`` (if set) is what the actor needs to make it."""

    source: str
    target: str
    permission: str | None = None


def _value(status: Any) -> str:
    return str(status.value if isinstance(status, Enum) else status)


class StateMachine:
    """The life cycle of one kind of row (immutable once declared).

    :param entity: the name used in audit entries and messages (``"service_ticket"``).
    :param states: every status, in display order.
    :param transitions: ``(source, target)`` or ``(source, target, permission)`` tuples, or
        :class:`Transition` objects. Unknown states are a ``ValueError`` at declaration.
    :param field: the row's status attribute.
    :param customer_field: the row's customer id attribute (the timeline entry goes there);
        None to log no interaction.
    :param source: the ``source`` of the timeline interactions (the plugin id).
    :param interaction_kind: the kind of the timeline interactions (``support``, ``complaint``, ...),
        or a function of the row giving it.
    """

    def __init__(self, entity: str, states: Iterable[str], transitions: Iterable[Transition | Sequence[str | None]],
                 *, field: str = "status", customer_field: str | None = "customer_id", source: str = "core",
                 interaction_kind: Any = "other") -> None:
        states = tuple(states)
        ts = tuple(t if isinstance(t, Transition) else Transition(*t) for t in transitions)  # type: ignore[arg-type]
        bad = sorted({s for t in ts for s in (t.source, t.target) if s not in states})
        if bad:
            raise ValueError(f"{entity}: transitions name unknown state(s) {', '.join(bad)}")
        by_source: dict[str, dict[str, Transition]] = {s: {} for s in states}
        for t in ts:
            if t.target in by_source[t.source]:
                raise ValueError(f"{entity}: transition {t.source} -> {t.target} is declared twice")
            by_source[t.source][t.target] = t
        self.entity, self.states, self.transitions, self.field = entity, states, ts, field
        self.customer_field, self.source, self.interaction_kind = customer_field, source, interaction_kind
        self._by_source = by_source

    def allowed(self, current: Any) -> list[str]:
        """The statuses a row in ``current`` may move to, in declaration order."""
        targets = self._by_source.get(_value(current), {})
        return [s for s in self.states if s in targets]

    def transition(self, current: Any, to: Any, ident: Any = None) -> Transition:
        """The transition from ``current`` to ``to``, or :class:`IllegalMove` with the allowed targets."""
        cur, target = _value(current), _value(to)
        what = f"{self.entity} {ident}" if ident is not None else self.entity
        if target not in self.states:
            raise IllegalMove(f"{what}: unknown status {target!r} (statuses: {', '.join(self.states)})")
        found = self._by_source.get(cur, {}).get(target)
        if found is None:
            allowed = self.allowed(cur)
            raise IllegalMove(f"{what} cannot move from {cur} to {target} "
                              f"(allowed from {cur}: {', '.join(allowed) if allowed else 'none'})")
        return found


def move(uow: UnitOfWork, entity: Any, to: Any, *, reason: str | None = None,
         machine: StateMachine | None = None) -> Transition:
    """Move ``entity`` to status ``to`` through its machine (``machine`` or ``type(entity).state_machine``).

    Checks the transition and its permission, sets the status (keeping the column's enum type),
    flushes, writes an audit entry and logs a timeline interaction on the customer. Returns the
    transition made.
    """
    sm = machine or getattr(type(entity), "state_machine", None)
    if not isinstance(sm, StateMachine):
        raise TypeError(f"{type(entity).__name__} has no state_machine; pass machine=")
    current = getattr(entity, sm.field)
    t = sm.transition(current, to, getattr(entity, "id", None))
    if t.permission:
        uow.require(t.permission)
    setattr(entity, sm.field, type(current)(t.target) if isinstance(current, Enum) else t.target)
    uow.session.flush()
    ident = getattr(entity, "id", None)
    uow.audit.record("move", sm.entity, ident, before={sm.field: t.source},
                     after={sm.field: t.target, **({"reason": reason} if reason else {})})
    if sm.customer_field and (customer_id := getattr(entity, sm.customer_field, None)) is not None:
        _log_timeline(uow, sm, entity, t, reason, customer_id)
    return t


def _log_timeline(uow: UnitOfWork, sm: StateMachine, entity: Any, t: Transition, reason: str | None,
                  customer_id: int) -> None:
    """The move as an interaction on the customer (channel ``other``, ``source`` = the machine's)."""
    from crmcore.enums import Channel, Direction
    from crmcore.schemas import InteractionCreate

    kind = sm.interaction_kind(entity) if callable(sm.interaction_kind) else sm.interaction_kind
    ident = getattr(entity, "id", None)
    label = sm.entity.replace("_", " ")
    uow.interactions.log(customer_id, InteractionCreate(
        channel=Channel.OTHER, direction=Direction.OUTBOUND, kind=kind, subject=f"{label} {ident}: {t.source} → {t.target}"[:200],
        notes=reason, occurred_at=uow.now(), source=sm.source, source_ref=f"{sm.entity}:{ident}"[:100]))
