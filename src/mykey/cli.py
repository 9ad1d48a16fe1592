"""The operators' command line: `mykey --help`."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mykey.config import get_settings
from mykey.db import UnitOfWork, make_engine, tokyo_date, utcnow
from mykey.errors import MyKeyError

app = typer.Typer(
    help="MyKey Platform and Municipal Point Cloud / マイキープラットフォーム", no_args_is_help=True
)
municipalities_app = typer.Typer(
    help="The registry of local governments / 自治体の登録", no_args_is_help=True
)
ledger_app = typer.Typer(help="The points ledger / ポイント台帳", no_args_is_help=True)
app.add_typer(municipalities_app, name="municipalities")
app.add_typer(ledger_app, name="ledger")

out = Console()
err = Console(stderr=True)


def _uow() -> UnitOfWork:
    return UnitOfWork(make_engine(get_settings().database_url))


def _fail(error: MyKeyError) -> NoReturn:
    err.print(
        f"[bold red]エラー[/] {error.message_ja}\n[bold red]Error[/] {error.message} ({error.code})"
    )
    raise typer.Exit(1)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=not sys.stderr.isatty(),
    )


@app.command()
def migrate() -> None:
    """Bring the database to the newest schema (safe to run again) / データベースを最新化."""
    from mykey.migrations import upgrade

    settings = get_settings()
    before, after = upgrade(make_engine(settings.database_url))
    if before == after:
        out.print(f"Database already at revision {after}; nothing to do. / 最新です。")
    else:
        out.print(f"Database migrated from {before or 'empty'} to {after}. / 移行しました。")


@app.command()
def demo() -> None:
    """Load the demo data once (municipalities, residents, shops, partners) / デモデータ."""
    from mykey import demo as demo_data

    try:
        report = demo_data.load(_uow())
    except MyKeyError as error:
        _fail(error)
    if report.transfers_made == 0:
        out.print("Demo data already loaded; nothing changed. / デモデータは読込済みです。")
    else:
        out.print(
            f"Demo data loaded: {report.municipalities} municipalities, {report.ledgers} point"
            f" programs, {report.transfers_made} transfers. / デモデータを読み込みました。"
        )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """Serve the app (API, /docs, /healthz) / サーバを起動."""
    import uvicorn

    from mykey.web.app import create_app

    out.print(f"MyKey on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    uvicorn.run(create_app(get_settings()), host=host, port=port, log_level="info")


@municipalities_app.command("import")
def municipalities_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Import local governments from CSV (localgovjp or the Ministry's layout); all or nothing."""
    from mykey.municipalities.registry import import_csv, parse_csv

    data = file.read_bytes()
    try:
        _, records, _ = parse_csv(data)
        with _progress() as progress:
            task = progress.add_task("Importing / 取込中", total=len(records) or None)
            report = import_csv(_uow(), data, progress=lambda n: progress.advance(task, n))
    except MyKeyError as error:
        _fail(error)
    if not report.ok:
        for problem in report.errors:
            err.print(f"{file}:{problem.line}: {problem.message_ja} / {problem.message}")
        err.print(
            f"[bold red]{len(report.errors)} bad row(s); nothing was imported."
            " / 誤りのある行があるため、何も取り込んでいません。[/]"
        )
        raise typer.Exit(1)
    out.print(
        f"{report.rows} rows ({report.layout}): {report.created} new, {report.updated} updated,"
        f" {report.unchanged} unchanged. / 新規 {report.created}・更新 {report.updated}・変更なし"
        f" {report.unchanged}"
    )


@municipalities_app.command("show")
def municipalities_show(code: str) -> None:
    """Show one local government by its six-digit code."""
    from mykey.municipalities.registry import get

    try:
        record = get(_uow(), code)
    except MyKeyError as error:
        _fail(error)
    out.print(f"{record.code}  {record.prefecture} {record.name}（{record.kana}）")


@municipalities_app.command("list")
def municipalities_list(
    prefecture: Annotated[str | None, typer.Option("--pref", help="prefecture code 01–47")] = None,
    query: Annotated[str | None, typer.Option("--q", help="part of a name")] = None,
    limit: int = 50,
) -> None:
    """List registered local governments."""
    from mykey.municipalities.registry import search

    try:
        total, records = search(_uow(), prefecture=prefecture, query=query, limit=limit)
    except MyKeyError as error:
        _fail(error)
    table = Table("code / コード", "prefecture / 都道府県", "name / 名称", "kana / かな")
    for r in records:
        table.add_row(r.code, r.prefecture, r.name, r.kana)
    out.print(table)
    out.print(f"{len(records)} of {total}")


@ledger_app.command("check")
def ledger_check() -> None:
    """Prove the ledger's invariants; exit 1 naming every account or lot that fails."""
    from mykey import ledger

    report = ledger.check(_uow())
    for problem in report.problems:
        err.print(f"[red]{problem.code}[/] {problem.subject}: {problem.message}")
    summary = (
        f"{report.ledgers} ledgers, {report.accounts} accounts, {report.transfers} transfers,"
        f" {report.lots} lots"
    )
    if not report.ok:
        err.print(f"[bold red]Ledger check FAILED ({len(report.problems)} problems); {summary}[/]")
        raise typer.Exit(1)
    out.print(f"Ledger check passed / 台帳の検査に合格: {summary}")


@ledger_app.command("balance")
def ledger_balance(account: int) -> None:
    """An account's balance and counters."""
    from mykey import ledger

    uow = _uow()
    try:
        acc = ledger.get_account(uow, account)
        bal = ledger.balance(uow, account)
    except MyKeyError as error:
        _fail(error)
    out.print(
        json.dumps(
            {
                "account": acc.id,
                "ledger": acc.ledger,
                "kind": acc.kind.value,
                "owner": acc.owner,
                "posted": bal.posted,
                "available": bal.available,
                "debits_posted": bal.debits_posted,
                "credits_posted": bal.credits_posted,
                "debits_pending": bal.debits_pending,
                "credits_pending": bal.credits_pending,
            },
            ensure_ascii=False,
        )
    )


@ledger_app.command("lots")
def ledger_lots(account: int, all_lots: Annotated[bool, typer.Option("--all")] = False) -> None:
    """A wallet's lots, in the order they are spent (earliest expiry first)."""
    from mykey import ledger

    try:
        rows = ledger.wallet_lots(_uow(), account, include_used=all_lots)
    except MyKeyError as error:
        _fail(error)
    table = Table("lot", "funding / 財源", "expires / 有効期限", "original", "remaining / 残高")
    for lot in rows:
        table.add_row(
            str(lot.id),
            lot.funding,
            lot.expires_on.isoformat(),
            f"{lot.original:,}",
            f"{lot.remaining:,}",
        )
    out.print(table)


@ledger_app.command("history")
def ledger_history(account: int, limit: int = 20, before: int | None = None) -> None:
    """An account's transfers, newest first."""
    from mykey import ledger
    from mykey.db import TOKYO

    try:
        page = ledger.history(_uow(), account, limit=limit, before=before)
    except MyKeyError as error:
        _fail(error)
    table = Table("seq", "when (JST)", "kind", "phase", "change", "counterparty", "actor")
    for e in page.entries:
        table.add_row(
            str(e.seq),
            e.created_at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M:%S"),
            e.kind,
            e.phase,
            f"{e.change:+,}",
            str(e.counterparty_account_id),
            e.actor,
        )
    out.print(table)
    if page.next_before is not None:
        out.print(f"older: --before {page.next_before}")


@ledger_app.command("expire")
def ledger_expire(
    as_of: Annotated[
        str | None, typer.Option(help="expire lots whose last day is before this date (JST)")
    ] = None,
) -> None:
    """Move the rest of every lapsed lot to its ledger's expired account (safe to re-run)."""
    from mykey import ledger

    try:
        day = date.fromisoformat(as_of) if as_of else tokyo_date(utcnow())
    except ValueError:
        err.print(f"Not a date: {as_of!r} (use YYYY-MM-DD) / 日付の形式が正しくありません")
        raise typer.Exit(2) from None
    with _progress() as progress:
        task = progress.add_task("Expiring lots / 失効処理中", total=None)
        report = ledger.expire_lots(_uow(), as_of=day, progress=lambda n: progress.advance(task, n))
    out.print(f"Expired {report.lots} lots, {report.points:,} points. / {report.lots} 件を失効")


@ledger_app.command("void-expired")
def ledger_void_expired() -> None:
    """Void every pending transfer whose timeout has passed."""
    from mykey import ledger

    count = ledger.void_expired(_uow())
    out.print(f"Voided {count} timed-out pending transfers. / {count} 件の保留を取り消しました")


def main() -> None:
    app()
