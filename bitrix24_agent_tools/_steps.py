"""Run a generator of steps to its end — each step done by a sync or an async executor, its value sent back
and its error thrown in — written once for the toolbox's tool flows and the offline worker's cycles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

S = TypeVar("S")
R = TypeVar("R")


def drive(gen: Generator[S, Any, R], execute: Callable[[S], Any]) -> R:
    """Run ``gen`` to completion, doing each step it yields with ``execute``; an error of a step is thrown
    into the generator, which may recover or let it propagate."""
    try:
        step = next(gen)
        while True:
            try:
                value = execute(step)
            except Exception as exc:
                step = gen.throw(exc)
            else:
                step = gen.send(value)
    except StopIteration as stop:
        result: R = stop.value
        return result


async def adrive(gen: Generator[S, Any, R], execute: Callable[[S], Awaitable[Any]]) -> R:
    """:func:`drive`, awaiting ``execute`` for each step."""
    try:
        step = next(gen)
        while True:
            try:
                value = await execute(step)
            except Exception as exc:
                step = gen.throw(exc)
            else:
                step = gen.send(value)
    except StopIteration as stop:
        result: R = stop.value
        return result
