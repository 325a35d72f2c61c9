"""Jobs with no broker: they run on the web process's event loop, after the response."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.jobs import jobs_for_tests as work
from tests.jobs.conftest import TEST_JOBS, lines
from vibetuner import JobsFeature, app_context, create_app
from vibetuner.errors import ConfigurationError, JobArgumentError
from vibetuner.jobs import cron, task
from vibetuner.jobs.inprocess import InProcessQueue
from vibetuner.models import UserModel
from vibetuner.models.failed_job import FailedJob


async def test_a_job_queued_by_a_request_runs_after_the_response(
    client: Any, jobs: Any, job_log: Path
) -> None:
    answer = await client.post("/queue/7")
    assert answer.status_code == 200
    assert answer.json()["ran_before_response"] is False
    await jobs.drain()
    assert [words[:2] for words in lines(job_log)] == [["ran", "7"]]
    [queued] = jobs.enqueued
    assert (queued.name, queued.args, queued.id) == ("tests.record", [7], answer.json()["id"])


async def test_retries_back_off_exponentially(jobs: Any, job_log: Path) -> None:
    await work.flaky.enqueue(jobs.context, 3)  # fails twice, then succeeds
    await jobs.drain()
    times = [float(words[1]) for words in lines(job_log, "flaky")]
    assert len(times) == 3
    first_wait, second_wait = times[1] - times[0], times[2] - times[1]
    assert 0.18 <= first_wait < 1.0  # backoff 0.2 s
    assert 0.38 <= second_wait < 1.5  # then twice as long
    assert await FailedJob.count() == 0


async def test_the_last_failure_is_kept_as_a_dead_letter_and_can_be_retried(
    jobs: Any, job_log: Path
) -> None:
    await work.always_fails.enqueue(jobs.context, "disk full")
    await jobs.drain()
    assert len(lines(job_log, "failing")) == 2  # max_attempts=2
    [dead] = await FailedJob.find_all().to_list()
    assert dead.task == "tests.always_fails" and dead.attempts == 2
    assert dead.args == ["disk full"] and "ValueError: disk full" in dead.error

    job_log.with_suffix(".fixed").write_text("")
    jobs.spawn(work.always_fails, dead.args, dead.kwargs, 0)  # what `jobs retry` does here
    await jobs.drain()
    assert lines(job_log, "fixed") == [["fixed", "disk", "full"]]


async def test_a_job_over_its_timeout_fails(jobs: Any, job_log: Path) -> None:
    await work.slow.enqueue(jobs.context, 5)
    started = time.monotonic()
    await jobs.drain()
    assert time.monotonic() - started < 2
    [dead] = await FailedJob.find_all().to_list()
    assert "took longer than 0.2 s" in dead.error
    assert lines(job_log, "slow") == []


async def test_an_idempotency_key_queues_once(jobs: Any, job_log: Path) -> None:
    first = await work.record.enqueue(jobs.context, 1, key="welcome:ada")
    second = await work.record.enqueue(jobs.context, 1, key="welcome:ada")
    assert first is not None and second is None
    await jobs.drain()
    assert len(lines(job_log, "ran")) == 1


async def test_a_delay_puts_the_job_off(jobs: Any, job_log: Path) -> None:
    await work.record.enqueue(jobs.context, 2, delay=0.4)
    await asyncio.sleep(0.15)
    assert lines(job_log) == []
    await jobs.drain()
    assert lines(job_log, "ran")[0][:2] == ["ran", "2"]


async def test_documents_travel_by_id_and_come_back_loaded(jobs: Any, job_log: Path) -> None:
    ada = UserModel(email="ada@example.com")
    await ada.insert()
    await work.greet.enqueue(jobs.context, ada, times=2)
    assert jobs.enqueued[-1].args == [str(ada.id)]  # stored as its id
    await jobs.drain()
    assert lines(job_log, "greet") == [["greet", "ada@example.com", "2"]]

    gone = UserModel(email="gone@example.com")
    await gone.insert()
    await work.greet.enqueue(jobs.context, gone)
    await gone.delete()
    await jobs.drain()
    [dead] = await FailedJob.find_all().to_list()
    assert "no longer exists" in dead.error


async def test_bad_arguments_are_refused_where_the_job_is_queued(jobs: Any) -> None:
    with pytest.raises(JobArgumentError, match="missing a required argument"):
        await work.record.enqueue(jobs.context)
    with pytest.raises(JobArgumentError, match="cannot be stored"):
        await work.record.enqueue(jobs.context, object())
    with pytest.raises(JobArgumentError, match="never saved"):
        await work.greet.enqueue(jobs.context, UserModel(email="new@example.com"))
    with pytest.raises(JobArgumentError, match="either delay or at"):
        await work.record.enqueue(jobs.context, 1, delay=1, at=time)  # type: ignore[arg-type]
    assert jobs.enqueued == []


async def test_periodic_jobs_tick(vibetuner_settings: Any, job_log: Path) -> None:
    application = create_app(
        settings=vibetuner_settings, features=[JobsFeature([work.every_second])]
    )
    async with application.router.lifespan_context(application):
        await asyncio.sleep(2.3)
    ticks = [int(words[1]) for words in lines(job_log, "tick")]
    assert len(ticks) >= 2 and len(ticks) == len(set(ticks))  # once per second


async def test_shutdown_waits_for_jobs_then_keeps_the_rest(
    vibetuner_settings: Any, job_log: Path
) -> None:
    settings = vibetuner_settings.model_copy(update={"jobs_shutdown_grace": 0.3})
    application = create_app(settings=settings, features=[JobsFeature(TEST_JOBS)])
    context = app_context(application)
    async with application.router.lifespan_context(application):
        await work.long_job.enqueue(context, 1, 0.1)  # finishes within the grace period
        await work.long_job.enqueue(context, 2, 30)  # does not
        await asyncio.sleep(0.05)
        failed_before = await FailedJob.count()
    assert failed_before == 0
    assert [words[:2] for words in lines(job_log, "end")] == [["end", "1"]]


async def test_without_jobs_feature_enqueue_says_what_to_add(vibetuner_settings: Any) -> None:
    context = app_context(create_app(settings=vibetuner_settings, features=[]))
    with pytest.raises(ConfigurationError, match="add JobsFeature"):
        await work.record.enqueue(context, 1)


async def test_enqueue_without_the_context_says_so(jobs: Any) -> None:
    with pytest.raises(TypeError, match="enqueue takes the app's context first"):
        await work.record.enqueue(7)  # type: ignore[arg-type]
    assert jobs.enqueued == []


async def test_a_job_its_app_was_not_given_is_refused(jobs: Any) -> None:
    # Declaring a job registers it nowhere: every_second is not in TEST_JOBS.
    with pytest.raises(ConfigurationError, match="every_second is not registered"):
        await work.every_second.enqueue(jobs.context)
    assert jobs.enqueued == []


def test_a_job_must_take_the_context_first() -> None:
    async def no_context() -> None: ...

    async def only_keywords(*, n: int) -> None: ...

    for function in (no_context, only_keywords):
        with pytest.raises(TypeError, match="context as its first parameter"):
            task(function)
    with pytest.raises(TypeError, match="must take only the context"):
        cron("* * * * *")(work.record.fn)


async def test_two_jobs_of_one_name_stop_the_start(vibetuner_settings: Any) -> None:
    @task(name="tests.record")
    async def impostor(context: Any, n: int) -> None: ...

    application = create_app(
        settings=vibetuner_settings, features=[JobsFeature([work.record, impostor])]
    )
    with pytest.raises(ConfigurationError, match="two jobs are named 'tests.record'"):
        async with application.router.lifespan_context(application):
            pass


async def test_a_job_gets_the_context_of_its_app(jobs: Any, job_log: Path) -> None:
    await work.whose_context.enqueue(jobs.context)
    await jobs.drain()
    assert lines(job_log, "context") == [["context", str(id(jobs.context))]]


def test_the_jobs_fixture_is_the_in_process_queue(jobs: Any) -> None:
    assert isinstance(jobs, InProcessQueue)
