"""The fleet's processes besides the web (`mykey worker`, `mykey log checkpointer`) and the job
queue's state (`mykey jobs`): docs/deploy.md, "A fleet of processes"."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mykey.config import Settings, get_settings
from mykey.db import is_sqlite, make_engine, make_uow_factory
from mykey.history.log import history_log

out = Console()
err = Console(stderr=True)

CHECKPOINTER_LOCK = 0x6D796B6579_6C6F67  # "mykeylog": one checkpointer signs at a time

jobs_app = typer.Typer(help="The job queue / ジョブキュー", no_args_is_help=True)


def _logging(settings: Settings) -> None:
    """Log lines as `mykey serve` writes them: text, or JSON (MYKEY_LOG_FORMAT=json)."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        from mykey.web.observe import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("mykey")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def _on_signal(stop: Callable[[], None]) -> None:
    """SIGTERM (systemd's stop) and SIGINT (Ctrl-C) end the process after the job in hand."""

    def handle(_signum: int, _frame: object) -> None:
        stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _needs_postgres(settings: Settings, what: str) -> None:
    if is_sqlite(settings.database_url):
        err.print(
            f"[bold red]エラー[/] {what} は PostgreSQL で使います。SQLite ではサーバ（make run）が"
            f"ジョブを実行します。\n[bold red]Error[/] {what} runs beside a fleet on PostgreSQL;"
            " on SQLite the serving process runs the background work (make run)."
        )
        raise typer.Exit(2)


def worker(
    schedules: Annotated[
        bool,
        typer.Option(
            "--schedules/--no-schedules",
            help="also enqueue the periodic jobs when due (once across the fleet either way)",
        ),
    ] = True,
) -> None:
    """Run queued jobs (bulk grants, the daily work) until stopped / ジョブを実行する.

    Run as many as wanted, on any machine: each takes one job at a time, a job is run by one
    worker, and one killed mid-job leaves it to another after MYKEY_JOB_LEASE_SECONDS."""
    from mykey.jobs.kinds import HANDLERS, platform_worker

    settings = get_settings()
    _needs_postgres(settings, "mykey worker")
    _logging(settings)
    engine = make_engine(settings.database_url, **settings.engine_options())
    factory = make_uow_factory(engine, log=history_log(settings))
    runner = platform_worker(factory, settings, schedules=schedules)
    _on_signal(runner.stop)
    logging.getLogger("mykey.jobs").info(
        "worker %s: running jobs %s%s",
        runner.name,
        ", ".join(sorted(HANDLERS)),
        " and the periodic ones" if schedules else "",
    )
    runner.loop()
    engine.dispose()
    logging.getLogger("mykey.jobs").info(
        "worker %s: stopped after %d jobs", runner.name, runner.ran
    )


def checkpointer(
    every: Annotated[
        float, typer.Option(min=1, help="seconds between checkpoints (when the log grew)")
    ] = 10.0,
) -> None:
    """Integrate the log and sign a checkpoint every N seconds / チェックポイントを定期作成.

    One signs at a time per database (a lock); a second one stands by and takes over within
    5 s when the first ends."""
    from mykey.history.log import CheckpointJob
    from mykey.leader import LeaderLock
    from mykey.web.background import BackgroundWork

    settings = get_settings()
    _logging(settings)
    engine = make_engine(settings.database_url, **settings.engine_options())
    signer = history_log(settings)
    factory = make_uow_factory(engine, log=signer)
    work = BackgroundWork(
        LeaderLock(settings.database_session_url or settings.database_url, key=CHECKPOINTER_LOCK),
        lambda: [CheckpointJob(factory, signer, seconds=every)],
    )
    stopped = threading.Event()
    _on_signal(stopped.set)
    work.start()
    logging.getLogger("mykey.history").info("checkpointer: every %.0f s", every)
    while not stopped.wait(1.0):
        pass
    work.stop()
    engine.dispose()


@jobs_app.command("list")
def jobs_list(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="the newest this many")] = 20,
) -> None:
    """The queue: jobs waiting or running by kind, then the newest jobs / ジョブの一覧."""
    from sqlalchemy import select

    from mykey.db import UnitOfWork
    from mykey.jobs import queue

    settings = get_settings()
    uow = UnitOfWork(make_engine(settings.database_url))

    def body() -> tuple[list[queue.Depth], list[Any]]:
        rows = uow.connection.execute(
            select(queue.JOBS).order_by(queue.JOBS.c.created_at.desc()).limit(limit)
        ).all()
        return queue.depth(uow.connection), list(rows)

    depth, rows = uow.read(body)
    if depth:
        for d in depth:
            out.print(
                f"{d.kind}: {d.count} {d.status} (oldest since {d.oldest:%Y-%m-%d %H:%M:%S}Z)"
            )
    else:
        out.print("No job waits or runs. / 待機中・実行中のジョブはありません。")
    table = Table("id", "kind", "status", "tries", "progress", "created (UTC)", "error")
    for r in rows:
        progress = f"{r.phase} {r.done:,}/{r.total:,}" if r.phase else ""
        table.add_row(
            r.id,
            r.kind,
            r.status,
            str(r.attempts),
            progress,
            f"{r.created_at:%Y-%m-%d %H:%M:%S}",
            (r.error or "")[:60],
        )
    out.print(table)
    uow.engine.dispose()


@jobs_app.command("run-now")
def jobs_run_now(
    name: Annotated[str, typer.Argument(help="a periodic job: daily or holds")],
) -> None:
    """Make a periodic job due now: the next worker's round enqueues it / 定期ジョブを今すぐ."""
    from mykey.db import UnitOfWork
    from mykey.jobs import queue
    from mykey.jobs.kinds import SCHEDULES

    names = [s.name for s in SCHEDULES]
    if name not in names:
        err.print(
            f"[bold red]エラー[/] 定期ジョブは {', '.join(names)} です。\n"
            f"[bold red]Error[/] the periodic jobs are {', '.join(names)}, not {name!r}."
        )
        raise typer.Exit(2)
    settings = get_settings()
    uow = UnitOfWork(make_engine(settings.database_url))
    queue.make_due(uow, name)
    uow.engine.dispose()
    out.print(f"{name}: due now / 実行待ちにしました")
