"""The gate over several slots: fewest in flight, the warm slot on ties, one fair line,
closed slots, a line handed to another gate."""

from __future__ import annotations

import asyncio

import pytest

from cncf.engine.gate import Gate
from cncf.observation import Code, Failed, Observation


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


def test_fewest_in_flight_then_the_warm_slot() -> None:
    gate = Gate(["a", "b", "c"])
    first = gate.try_enter(False, 4)
    assert first is not None
    gate.leave(first)
    again = gate.try_enter(False, 4)
    assert again is first  # a tie: the slot used last (warm)
    other = gate.try_enter(False, 4)
    assert other is not None and other is not first  # fewest in flight
    third = gate.try_enter(False, 4)
    assert third is not None and {first.owner, other.owner, third.owner} == {"a", "b", "c"}
    fourth = gate.try_enter(False, 4)
    assert fourth is not None and fourth.running == 2
    assert gate.running == 4


def test_serialize_waits_only_when_every_slot_is_busy_and_is_admitted_where_one_frees() -> None:
    async def main() -> None:
        gate = Gate(["a", "b"])
        s1 = gate.try_enter(True, 1)
        s2 = gate.try_enter(True, 1)
        assert s1 is not None and s2 is not None and s1 is not s2
        assert gate.try_enter(True, 1) is None
        w1 = gate.park(True, 1)
        w2 = gate.park(True, 1)
        gate.leave(s2)
        assert await w1 is s2 and not w2.done()  # first come, first served, on the freed slot
        gate.leave(s1)
        assert await w2 is s1

    run(main())


def test_a_closed_slot_admits_nobody_and_its_line_goes_elsewhere() -> None:
    async def main() -> None:
        gate = Gate(["a", "b"])
        a, b = gate.slots
        gate.close(a)
        assert gate.try_enter(True, 1) is b
        waiter = gate.park(True, 1)
        gate.leave(b)
        assert await waiter is b
        gate.leave(b)
        gate.open(a)
        assert gate.try_enter(True, 1) is b  # both free: the warm one
        assert gate.try_enter(True, 1) is a  # open again

    run(main())


def test_a_line_moves_to_a_new_gate_in_order() -> None:
    async def main() -> None:
        old, new = Gate(["old"]), Gate(["new"])
        (slot,) = old.slots
        old.close(slot)
        waiters = [old.park(True, 1) for _ in range(3)]
        old.move_waiters(new)
        assert (await waiters[0]).owner == "new"
        assert not waiters[1].done()
        new.leave(new.slots[0])
        assert (await waiters[1]).owner == "new"

    run(main())


def test_a_broken_gate_wakes_every_waiter() -> None:
    async def main() -> None:
        gate = Gate(["a", "b"])
        for _ in range(2):
            assert gate.try_enter(True, 1) is not None
        waiter = gate.park(True, 1)
        gate.break_(Observation.of(Code.INSTANCE_LOST_WAITING, "gone"))
        with pytest.raises(Failed) as caught:
            await waiter
        assert caught.value.observation.code is Code.INSTANCE_LOST_WAITING

    run(main())
