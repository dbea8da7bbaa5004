"""SlidingWindowLimiter on fake time, and the client against the simulator's real limit."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import time
from collections.abc import Iterator

import httpx
import pytest

from rsbridge.appliance.client import ApplianceClient
from rsbridge.appliance.ratelimit import RateLimits, SlidingWindowLimiter
from rsbridge.sim.appliance.server import create_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.serve import serve_in_thread

LIMITS = RateLimits(per_second=3, per_hour=10)


class FakeTime:
    """Time that only moves when told to.

    With ``auto`` a sleep moves time at once (for sequential callers); otherwise sleepers
    wait until :meth:`advance` reaches their wake-up time, so tests can interleave
    concurrent callers deterministically.
    """

    def __init__(self, *, auto: bool = False) -> None:
        self.now = 0.0
        self.auto = auto
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.auto:
            self.now += seconds
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), woken))
        await woken

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking sleepers in order and letting them run."""
        target = self.now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            wake_at, _, woken = heapq.heappop(self._sleepers)
            self.now = wake_at
            woken.set_result(None)
            await settle()
        self.now = target
        await settle()

    def limiter(self, limits: RateLimits = LIMITS) -> SlidingWindowLimiter:
        return SlidingWindowLimiter(limits, clock=self.clock, sleep=self.sleep)


async def settle() -> None:
    """Let every runnable task run until it blocks."""
    for _ in range(20):
        await asyncio.sleep(0)


def max_in_window(times: list[float], span: float) -> int:
    """The most calls in any half-open window ``[t, t + span)``."""
    return max(sum(1 for u in times if t <= u < t + span) for t in times)


async def test_back_to_back_calls_wait_exactly_as_long_as_needed() -> None:
    fake = FakeTime(auto=True)
    limiter = fake.limiter()
    admitted = []
    for _ in range(12):
        await limiter.acquire()
        admitted.append(fake.now)
    # 3 per second, then the hour's 10 are used up until the first one is an hour old.
    assert admitted == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3600, 3600]
    assert fake.sleeps == [1, 1, 1, 3597]


async def test_windows_slide_rather_than_reset() -> None:
    fake = FakeTime(auto=True)
    limiter = fake.limiter()
    fake.now = 0.5
    for _ in range(3):
        await limiter.acquire()
    fake.now = 1.25  # a fixed window would have reset at 1.0
    assert limiter.delay() == 0.25
    await limiter.acquire()
    assert (fake.now, fake.sleeps) == (1.5, [0.25])
    fake.now = 2.5  # exactly one second after: the three at 0.5 no longer count
    assert limiter.delay() == 0.0


async def test_random_arrivals_respect_both_windows_and_never_wait_needlessly() -> None:
    rng = random.Random(5)
    for _ in range(20):
        fake = FakeTime(auto=True)
        limiter = fake.limiter()
        admitted: list[float] = []
        for _ in range(25):
            fake.now += rng.choice([0, 0, 0.25, 0.5, 1.0, 600.0])
            arrival = fake.now
            await limiter.acquire()
            admitted.append(fake.now)
            if fake.now > arrival:
                # Waited: admitted the moment a window let it in, not later.
                earliest = [admitted[-4] + 1.0] if len(admitted) >= 4 else []
                earliest += [admitted[-11] + 3600.0] if len(admitted) >= 11 else []
                assert fake.now in earliest
        assert max_in_window(admitted, 1.0) <= 3
        assert max_in_window(admitted, 3600.0) <= 10


async def test_pause_holds_every_caller() -> None:
    fake = FakeTime()
    limiter = fake.limiter()
    limiter.pause(2.0)
    admitted: list[tuple[int, float]] = []

    async def caller(i: int) -> None:
        await limiter.acquire()
        admitted.append((i, fake.now))

    tasks = [asyncio.create_task(caller(i)) for i in range(3)]
    await settle()
    assert admitted == []
    await fake.advance(1.5)
    assert admitted == []
    await fake.advance(0.5)
    assert admitted == [(0, 2.0), (1, 2.0), (2, 2.0)]
    await asyncio.gather(*tasks)


async def test_pause_extends_a_wait_already_in_progress_and_never_shortens_one() -> None:
    fake = FakeTime()
    limiter = fake.limiter(RateLimits(per_second=1, per_hour=100))
    await limiter.acquire()  # at 0
    waiter = asyncio.create_task(limiter.acquire())
    await settle()
    assert fake.sleeps == [1.0]
    await fake.advance(0.5)
    limiter.pause(2.0)  # a 429 at 0.5: nobody goes before 2.5
    await fake.advance(0.5)
    assert not waiter.done() and fake.sleeps == [1.0, 1.5]
    await fake.advance(1.5)
    assert waiter.done() and fake.now == 2.5
    limiter.pause(0.1)  # shorter than the window's own wait
    assert limiter.delay() == 1.0
    follower = asyncio.create_task(limiter.acquire())
    await fake.advance(0.5)
    assert not follower.done()
    await fake.advance(0.5)
    assert follower.done() and fake.now == 3.5


async def test_waiters_are_admitted_first_come_first_served() -> None:
    fake = FakeTime()
    limiter = fake.limiter(RateLimits(per_second=1, per_hour=100))
    admitted: list[tuple[str, float]] = []

    async def caller(name: str) -> None:
        await limiter.acquire()
        admitted.append((name, fake.now))

    tasks = [asyncio.create_task(caller(f"t{i}")) for i in range(5)]
    await settle()
    await fake.advance(1.0)
    tasks.append(asyncio.create_task(caller("late")))  # queues behind t2, t3, t4
    await settle()
    await fake.advance(10.0)
    await asyncio.gather(*tasks)
    assert admitted == [
        ("t0", 0.0),
        ("t1", 1.0),
        ("t2", 2.0),
        ("t3", 3.0),
        ("t4", 4.0),
        ("late", 5.0),
    ]


async def test_settled_calls_count_from_when_their_answer_arrived() -> None:
    fake = FakeTime(auto=True)
    limiter = fake.limiter(RateLimits(per_second=2, per_hour=100))
    first = await limiter.acquire()
    second = await limiter.acquire()
    fake.now = 0.25
    limiter.settle(second)  # answered at 0.25
    fake.now = 0.5
    limiter.settle(first)  # answered later than the second
    await limiter.acquire()
    assert fake.now == 1.5  # the first in line counts from 0.5: later, never earlier
    early = await limiter.acquire()  # both earlier ones have left the window by 1.5
    assert fake.now == 1.5
    fake.now = 10.0
    limiter.settle(early)
    limiter.settle(early)
    assert early.at == 10.0
    fake.now = 5.0
    limiter.settle(early)  # never moves back
    assert early.at == 10.0


# --- over HTTP ----------------------------------------------------------------------------------

SIM_PER_SECOND = 5


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[SimApplianceState, str]]:
    state = SimApplianceState.default(seed=3)
    app = create_app(state, rate_per_second=SIM_PER_SECOND, rate_per_hour=15_000)
    with serve_in_thread(app) as url:
        yield state, url.removeprefix("http://")


async def test_client_never_exceeds_the_appliance_limit(
    sim: tuple[SimApplianceState, str],
) -> None:
    state, host = sim
    statuses: list[int] = []

    async def record(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    account = state.accounts[0]
    async with httpx.AsyncClient(event_hooks={"response": [record]}) as http:
        client = ApplianceClient(
            host,
            account.client_id,
            account.client_secret,
            scheme="http",
            http=http,
            rate_limits=RateLimits(per_second=SIM_PER_SECOND, per_hour=15_000),
        )
        started = time.monotonic()
        results = await asyncio.gather(*(client.check_health() for _ in range(3 * SIM_PER_SECOND)))
        elapsed = time.monotonic() - started
    assert [h.appliance_id for h in results] == [state.appliance_id] * 3 * SIM_PER_SECOND
    assert 429 not in statuses
    assert statuses == [200] * (3 * SIM_PER_SECOND + 1)  # one token, then every call once
    assert client.requests_sent == 3 * SIM_PER_SECOND
    assert elapsed >= 2.0  # three seconds' worth of budget: the client did hold back
