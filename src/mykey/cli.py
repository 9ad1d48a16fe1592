"""The operators' command line: `mykey --help`."""

from __future__ import annotations

import copy
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mykey.cli_fleet import checkpointer, jobs_app, worker
from mykey.config import get_settings
from mykey.db import UnitOfWork, make_engine, tokyo_date, utcnow
from mykey.errors import MyKeyError
from mykey.history.log import history_log

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Engine

    from mykey.config import Settings
    from mykey.history.checkpoints import Signer
    from mykey.history.cosign import Cosigner
    from mykey.history.restore import WitnessCopy
    from mykey.history.witness import WitnessConfig
    from mykey.jobs.queue import Progress as JobProgress
    from mykey.points.bulk import JobView

app = typer.Typer(
    help="MyKey Platform and Municipal Point Cloud / マイキープラットフォーム", no_args_is_help=True
)
municipalities_app = typer.Typer(
    help="The registry of local governments / 自治体の登録", no_args_is_help=True
)
ledger_app = typer.Typer(help="The points ledger / ポイント台帳", no_args_is_help=True)
app.add_typer(municipalities_app, name="municipalities")
cards_app = typer.Typer(help="Cards: the simulator and card proofs / カード", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
app.add_typer(cards_app, name="cards")
keys_app = typer.Typer(
    help="API keys for terminals, staff, operators / API キー", no_args_is_help=True
)
providers_app = typer.Typer(help="Service providers and zones / 事業者・圏域", no_args_is_help=True)
grants_app = typer.Typer(help="Administrative points / 行政ポイントの付与", no_args_is_help=True)
programs_app = typer.Typer(help="Point programs / ポイント制度", no_args_is_help=True)
app.add_typer(grants_app, name="grants")
app.add_typer(programs_app, name="programs")
app.add_typer(keys_app, name="keys")
app.add_typer(providers_app, name="providers")

app.command()(worker)
app.add_typer(jobs_app, name="jobs")

out = Console()
err = Console(stderr=True)


def _uow() -> UnitOfWork:
    settings = get_settings()
    engine = make_engine(settings.database_url, busy_timeout=settings.database_busy_timeout)
    return UnitOfWork(engine, log=history_log(settings))


def _fail(error: MyKeyError) -> NoReturn:
    err.print(
        f"[bold red]エラー[/] {error.message_ja}\n[bold red]Error[/] {error.message} ({error.code})"
    )
    raise typer.Exit(1)


_USABLE = (
    "points and vouchers are usable through their last day",
    "ポイントやポイント券は有効期限の日まで使えます",
)


# `--as-of` of the two lot expiries (`ledger expire`, `points expire`)
LapsedBefore = Annotated[
    str | None,
    typer.Option(
        help="YYYY-MM-DD (Tokyo), today or earlier: lots whose last day is before it expire"
        " (default: today)"
    ),
]


def _as_of(value: str | None, why: tuple[str, str] = _USABLE) -> date:
    """A daily job's `--as-of`: a Tokyo date, today when not given; a day to come is refused
    (exit 2) before anything runs, since run early a job would take what is still usable."""
    today = tokyo_date(utcnow())
    try:
        day = date.fromisoformat(value) if value is not None else today
    except ValueError:
        err.print(
            f"--as-of is a date YYYY-MM-DD, not {value!r}."
            " / --as-of は YYYY-MM-DD 形式の日付で指定してください"
        )
        raise typer.Exit(2) from None
    if day > today:
        err.print(
            f"--as-of {day} is a day to come (today is {today} in Tokyo): {why[0]}."
            f" / {day} はまだ来ていない日です（東京の今日は {today}）。{why[1]}。"
        )
        raise typer.Exit(2)
    return day


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
    if not (DEFAULT_CARDS / "ca.pem").exists():
        from mykey.identity.simulator import SimulatorCA

        ca = SimulatorCA.create(now=utcnow())
        ca.save(DEFAULT_CARDS)
        cards = {}
        for resident in demo_data.RESIDENTS:
            cards[resident] = ca.issue(now=utcnow())
            path = DEFAULT_CARDS / "cards" / f"{resident}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(cards[resident].to_json())
        try:
            demo_data.register_residents(_uow(), cards)
        except MyKeyError as error:
            _fail(error)
        out.print(
            f"Demo cards: {DEFAULT_CARDS}/cards/*.json, trusted through {DEFAULT_CARDS}/ca.pem;"
            f" each is a MyKey ID of the same name, password {demo_data.DEMO_PASSWORD!r}"
            " (try `mykey cards prove var/cards/cards/MY123456.json`)."
        )
    _demo_staff()
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
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="server processes, e.g. one per core; the background work runs in one of them",
        ),
    ] = 1,
    http: Annotated[
        str, typer.Option(help="HTTP parser: auto (httptools if installed), httptools, h11")
    ] = "auto",
) -> None:
    """Serve the app (API, /docs, /healthz) / サーバを起動."""
    import uvicorn

    if http not in ("auto", "httptools", "h11"):
        err.print(f"--http: auto, httptools or h11, not {http!r} / --http の値が不正です")
        raise typer.Exit(2)
    # Serving: expire lapsed points once a day and sign a checkpoint every 10 s, unless the
    # environment says otherwise. Put in the environment, so every worker process reads them.
    os.environ.setdefault("MYKEY_DAILY_EXPIRY", "true")
    os.environ.setdefault("MYKEY_LOG_CHECKPOINT_SECONDS", "10")
    get_settings.cache_clear()
    settings = get_settings()
    _check_log_key(settings)
    trusted = settings.trusted_proxy_list()
    say = _json_line if settings.log_format == "json" else out.print
    say(f"MyKey on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    if workers > 1:
        say(f"{workers} server processes / サーバプロセス {workers} 個")
        _metrics_folder()
    if trusted:
        say(f"Forwarded client addresses believed from: {', '.join(trusted)}")
    if settings.background == "workers":
        say(
            "Background work: by `mykey worker` and `mykey log checkpointer`, not here"
            " / バックグラウンド処理は worker と checkpointer が行います"
        )
    uvicorn.run(
        "mykey.web.app:serving_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        http=http,
        loop="auto",  # uvloop where installed
        log_level="info",
        log_config=_serve_log_config(settings.log_format),
        # X-Forwarded-* only from MYKEY_TRUSTED_PROXIES (uvicorn would trust 127.0.0.1 by
        # default, and then anyone on the machine or behind a local proxy picks an address).
        proxy_headers=bool(trusted),
        forwarded_allow_ips=",".join(trusted) if trusted else "",
    )


def _metrics_folder() -> None:
    """Several server processes share their metrics through files (prometheus-client's
    multi-process mode), so that any of them answers /metrics for all: a new folder, or the
    one PROMETHEUS_MULTIPROC_DIR names, emptied of an earlier run's files."""
    import tempfile

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="mykey-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def _json_line(message: str) -> None:
    """A line of `mykey serve` before uvicorn logs, as the JSON log's lines are."""
    import logging

    from mykey.web.observe import JsonFormatter

    record = logging.LogRecord("mykey", logging.INFO, __file__, 0, message, None, None)
    print(JsonFormatter().format(record), flush=True)


def _serve_log_config(log_format: str = "text") -> dict[str, Any]:
    """uvicorn's logging, and the app's own lines (`mykey.*`, e.g. a database outage's one
    line per failed request) in the same format: uvicorn's text, or one JSON object a line
    with the request id (`MYKEY_LOG_FORMAT=json`)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["mykey"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    if log_format == "json":
        for name in ("default", "access"):
            config["formatters"][name] = {"()": "mykey.web.observe.JsonFormatter"}
    return config


def _check_log_key(settings: Settings) -> None:
    """Refuse to serve with a signing key (or salt key) that is not the log's."""
    from sqlalchemy.exc import SQLAlchemyError

    from mykey.history.keys import check_log_identity

    log = history_log(settings)
    uow = UnitOfWork(make_engine(settings.database_url))
    try:
        uow.read(lambda: check_log_identity(uow.connection, log.signer, log.salt_key))
    except MyKeyError as error:
        _fail(error)
    except SQLAlchemyError:  # no database yet, or not migrated: the first leaf checks again
        return
    finally:
        uow.engine.dispose()


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
    as_of: LapsedBefore = None,
) -> None:
    """Move the rest of every lapsed lot to its ledger's expired account (safe to re-run)."""
    from mykey import ledger

    day = _as_of(as_of)
    try:
        with _progress() as progress:
            task = progress.add_task("Expiring lots / 失効処理中", total=None)
            report = ledger.expire_lots(
                _uow(), as_of=day, progress=lambda n: progress.advance(task, n)
            )
    except MyKeyError as error:
        _fail(error)
    out.print(f"Expired {report.lots} lots, {report.points:,} points. / {report.lots} 件を失効")


@ledger_app.command("void-expired")
def ledger_void_expired() -> None:
    """Void every pending transfer whose timeout has passed."""
    from mykey import ledger

    count = ledger.void_expired(_uow())
    out.print(f"Voided {count} timed-out pending transfers. / {count} 件の保留を取り消しました")


DEFAULT_CARDS = Path("var") / "cards"


@cards_app.command("new-ca")
def cards_new_ca(
    folder: Annotated[
        Path, typer.Option("--out", help="folder for ca.pem and ca-key.pem")
    ] = DEFAULT_CARDS,
    force: Annotated[bool, typer.Option(help="replace an existing CA")] = False,
) -> None:
    """Create a simulator CA (for tests and demos only; never trusted in production)."""
    from mykey.identity.simulator import SimulatorCA

    if (folder / "ca.pem").exists() and not force:
        err.print(f"{folder / 'ca.pem'} exists; use --force to replace it. / 既に存在します")
        raise typer.Exit(1)
    cert, key = SimulatorCA.create(now=utcnow()).save(folder)
    folder.joinpath("cards").mkdir(exist_ok=True)
    out.print(f"Trust anchor: {cert}\nCA key (keep private): {key}")


@cards_app.command("issue")
def cards_issue(
    name: Annotated[str, typer.Argument(help="a file name for the card, e.g. MY123456")],
    ca: Annotated[Path, typer.Option(help="the simulator CA folder")] = DEFAULT_CARDS,
    valid_days: Annotated[int, typer.Option(min=1, max=3650)] = 5 * 365,
) -> None:
    """Issue a simulated card (key pair + JPKI-like certificate) as CA/cards/NAME.json."""
    from datetime import timedelta

    from mykey.identity.simulator import SimulatorCA

    if not (ca / "ca-key.pem").exists():
        err.print(f"No simulator CA in {ca}: run `mykey cards new-ca` first. / CA がありません")
        raise typer.Exit(1)
    card = SimulatorCA.load(ca).issue(now=utcnow(), valid_for=timedelta(days=valid_days))
    path = ca / "cards" / f"{Path(name).name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(card.to_json())
    path.chmod(0o600)
    out.print(f"{path}  card key {card.card_key}")


@cards_app.command("prove")
def cards_prove(
    card_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    server: Annotated[str, typer.Option(help="the MyKey server")] = "http://127.0.0.1:8000",
) -> None:
    """Tap a simulated card against a server, as a terminal does: challenge, sign, verify."""
    import base64
    import urllib.error
    import urllib.request

    from mykey.identity.simulator import SimulatedCard

    card = SimulatedCard.from_json(card_file.read_text())

    def post(path: str, body: dict[str, str] | None) -> dict[str, str]:
        request = urllib.request.Request(  # noqa: S310 -- an operator-given server URL
            server.rstrip("/") + path,
            data=json.dumps(body or {}).encode(),
            headers={"Content-Type": "application/json", "Accept-Language": "ja"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as error:
            problem = json.loads(error.read() or b"{}")
            err.print(f"{error.code} {problem.get('code')}: {problem.get('detail')}")
            raise typer.Exit(1) from None
        except urllib.error.URLError as error:
            err.print(f"Cannot reach {server}: {error.reason} / サーバに接続できません")
            raise typer.Exit(1) from None

    challenge = post("/api/v1/card/challenges", None)
    nonce = base64.b64decode(challenge["nonce"])
    verified = post("/api/v1/card/verifications", card.proof(challenge["challenge_id"], nonce))
    out.print(f"Card verified / カードを確認しました: {verified['card_key']}")


@cards_app.command("revoke")
def cards_revoke(
    card_key: Annotated[str, typer.Argument(help="the card key (64 hex characters)")],
    reason: Annotated[str, typer.Option(help="why, e.g. reported lost")],
) -> None:
    """Refuse a card everywhere from now on (a lost or stolen card)."""
    import re

    from mykey.identity.proofs import revoke_card

    if not re.fullmatch(r"[0-9a-f]{64}", card_key):
        err.print("A card key is 64 hexadecimal characters. / カードキーは 16 進 64 文字です")
        raise typer.Exit(2)
    revoke_card(_uow(), card_key=card_key, reason=reason, actor="operator:cli")
    out.print(f"Card {card_key[:12]}… revoked. / カードを利用停止にしました")


@keys_app.command("create")
def keys_create(
    role: Annotated[
        str, typer.Option(help="terminal, provider_staff, municipality_staff, operator")
    ],
    label: Annotated[str, typer.Option(help="what the key is for, e.g. 'Central library desk 1'")],
    provider: Annotated[str | None, typer.Option(help="provider id (terminal, staff)")] = None,
    municipality: Annotated[
        str | None, typer.Option(help="6-digit code (municipality staff)")
    ] = None,
) -> None:
    """Create an API key; it is shown once and stored only hashed."""
    from mykey.identity.keys import create_key

    try:
        key, principal = create_key(
            _uow(), role=role, label=label, provider_id=provider, municipality=municipality
        )
    except MyKeyError as error:
        _fail(error)
    out.print(f"{principal.role.value} key {principal.key_id} (shown once / 一度だけ表示):")
    out.print(key, soft_wrap=True)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke an API key at once."""
    from mykey.identity.keys import revoke_key

    try:
        revoke_key(_uow(), key_id)
    except MyKeyError as error:
        _fail(error)
    out.print(f"Key {key_id} revoked. / キーを無効化しました")


@providers_app.command("add")
def providers_add(
    provider_id: str,
    name: Annotated[str, typer.Option()],
    kind: Annotated[str, typer.Option(help="library, gym, museum, …")],
    municipality: Annotated[str, typer.Option(help="6-digit local government code")],
    zone: Annotated[str | None, typer.Option(help="zone id, e.g. omuta")] = None,
) -> None:
    """Register a service provider (事業者)."""
    from mykey.identity.links import add_provider

    try:
        view = add_provider(
            _uow(),
            provider_id=provider_id,
            name=name,
            kind=kind,
            municipality=municipality,
            zone_id=zone,
        )
    except MyKeyError as error:
        _fail(error)
    out.print(f"Provider {view.id}: {view.name} ({view.kind}, {view.municipality})")


@providers_app.command("add-zone")
def providers_add_zone(zone_id: str, name: Annotated[str, typer.Option()]) -> None:
    """Register a zone of providers that share their users (R2.4)."""
    from mykey.identity.links import add_zone

    try:
        add_zone(_uow(), zone_id=zone_id, name=name)
    except MyKeyError as error:
        _fail(error)
    out.print(f"Zone {zone_id}: {name}")


@programs_app.command("list")
def programs_list() -> None:
    """Every municipality's point program."""
    from mykey.points.program_setup import list_programs

    table = Table(
        "code / コード", "municipality / 自治体", "points / ポイント名", "rules / 付与ルール"
    )
    for program in list_programs(_uow()):
        rules = ", ".join(f"{r.activity} {r.points}" for r in program.rules)
        table.add_row(program.code, program.municipality, program.point_name, rules)
    out.print(table)


@grants_app.command("bulk")
def grants_bulk(
    file: Annotated[
        Path, typer.Argument(help="CSV: mykey_id[,points][,reason] (UTF-8 or Shift_JIS)")
    ],
    municipality: Annotated[str, typer.Option(help="6-digit local government code")],
    activity: Annotated[
        str | None, typer.Option(help="an activity of the rules, for every row")
    ] = None,
    points: Annotated[int | None, typer.Option(help="or these points for every row")] = None,
    reason: Annotated[
        str | None, typer.Option(help="the reason, unless the file gives one")
    ] = None,
    event: Annotated[str | None, typer.Option(help="the event, for once-per-event rules")] = None,
    key: Annotated[
        str | None,
        typer.Option(
            help="idempotency key (default: from the file and options, so running"
            " the same file again grants once)"
        ),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="write the refused rows here (CSV) if any")
    ] = None,
) -> None:
    """Grant every row of a file, or none: a grant list or an eligibility list (R4.4).

    A file with a points column grants each row its points; a file of MyKey IDs alone (an
    eligibility list) grants each the --activity's points or --points with --reason. If any
    row is refused, nothing is granted and every refused row is listed."""
    import hashlib
    import time

    from mykey.points.bulk import JobParams, get_job, refusals_csv, refusals_of, submit_job

    try:
        data = file.read_bytes()
    except OSError as exc:
        err.print(f"[bold red]エラー[/] ファイルを読めません / cannot read {file}: {exc.strerror}")
        raise typer.Exit(2) from None
    params = JobParams(activity=activity, points=points, reason=reason, event=event)
    if key is None:
        digest = hashlib.sha256(data + json.dumps(params.as_dict(), sort_keys=True).encode())
        key = f"bulk-{municipality}-{digest.hexdigest()[:32]}"
    uow = _uow()
    try:
        job = submit_job(
            uow, municipality=municipality, actor="staff:cli", key=key, data=data, params=params
        )
        if job.finished:
            out.print(
                "This file was already sent with this key; nothing more is granted."
                " / このファイルは送信済みです。追加の付与はありません。"
            )
        else:
            with _progress() as bar:
                task = bar.add_task("読み込み / reading", total=None)

                def show(p: JobProgress) -> None:
                    names = {
                        "reading": "読み込み / reading",
                        "checking": "確認 / checking",
                        "granting": "付与 / granting",
                    }
                    bar.update(
                        task,
                        description=names.get(p.phase, p.phase),
                        completed=p.done,
                        total=p.total or None,
                    )

                job = _run_here(uow, municipality, job.id, show) or job
                if not job.finished:
                    err.print(
                        "ワーカーが実行中です。進み具合を表示します"
                        "（Ctrl-C で表示だけ止まります）。 / A worker runs this job;"
                        " following it (Ctrl-C stops following only)."
                    )
                while not job.finished:  # a worker has it: follow its progress
                    if job.progress is not None:
                        show(job.progress)
                    time.sleep(0.5)
                    job = get_job(uow, municipality, job.id)
    except MyKeyError as error:
        _fail(error)
    if job.status == "done":
        out.print(
            f"Job {job.id}: granted {job.granted:,} residents {job.points:,} points."
            f" / {job.granted:,} 人に計 {job.points:,} ポイントを付与しました。"
        )
        return
    if job.error is not None:
        err.print(
            f"[bold red]付与しませんでした[/] {job.error.get('message_ja', '')}\n"
            f"[bold red]Nothing granted[/] {job.error.get('message', '')}"
            f" ({job.error.get('code', '')})"
        )
        raise typer.Exit(1)
    refused = refusals_of(uow, municipality, job.id, limit=10**6)
    err.print(
        f"[bold red]付与しませんでした[/] {job.refused:,} 行が受け付けられません"
        f"（全 {job.rows:,} 行）。\n"
        f"[bold red]Nothing granted[/]: {job.refused:,} of {job.rows:,} rows refused."
    )
    table = Table("line", "mykey_id", "code", "理由 / reason")
    for r in refused[:20]:
        table.add_row(str(r.line), r.mykey_id, r.code, f"{r.message_ja} / {r.message}")
    err.print(table)
    if report is not None:
        report.write_text(refusals_csv(refused), encoding="utf-8")
        err.print(f"All refused rows: {report} / 受け付けられない行の一覧: {report}")
    elif len(refused) > 20:
        err.print("… use --report FILE for every refused row / 全行は --report で出力できます")
    raise typer.Exit(1)


def _run_here(
    uow: UnitOfWork, municipality: str, job_id: str, show: Callable[[JobProgress], None]
) -> JobView | None:
    """Run a queued bulk grant job in this process, if no worker has taken it; its view."""
    from mykey.db import is_sqlite, make_uow_factory
    from mykey.jobs import queue
    from mykey.jobs.kinds import platform_worker
    from mykey.jobs.worker import worker_name
    from mykey.points.bulk import get_job

    settings = get_settings()
    embedded = is_sqlite(settings.database_url)
    runner = platform_worker(
        make_uow_factory(uow.engine, log=uow.log),
        settings,
        schedules=False,
        # SQLite: no lease renewal beside the job's own write transaction; hold it long
        lease=3600.0 if embedded else None,
        name=f"cli:{worker_name()}",
    )
    claim = queue.claim(uow, runner.name, lease=runner.lease, job_id=job_id)
    if claim is None:
        return None
    if runner.run_claimed(claim, progress=show) == "queued":  # it failed; a worker tries again
        state = queue.state_of(uow, job_id)
        err.print(
            f"[bold red]エラー[/] ジョブが途中で止まりました。付与は行われていません。後で自動的に"
            f"再実行されます（このコマンドを再度実行しても同じです）。\n[bold red]Error[/] the job"
            f" stopped; nothing was granted. It will be tried again (or run this command again):"
            f" {escape(state.error if state and state.error else '')}"
        )
        raise typer.Exit(1)
    return get_job(uow, municipality, job_id)


@grants_app.command("one")
def grants_one(
    municipality: Annotated[str, typer.Option(help="6-digit local government code")],
    mykey_id: Annotated[str, typer.Option("--mykey-id")],
    reason: Annotated[str, typer.Option()],
    key: Annotated[str, typer.Option(help="idempotency key: running again grants once")],
    activity: Annotated[str | None, typer.Option(help="an activity of the rules")] = None,
    points: Annotated[int | None, typer.Option(help="or a number of points")] = None,
    event: Annotated[str | None, typer.Option(help="the event, for once-per-event rules")] = None,
) -> None:
    """Grant points to one resident from the municipality's budget."""
    from mykey.points.grants import grant_points

    try:
        receipt = grant_points(
            _uow(),
            municipality=municipality,
            mykey_id=mykey_id,
            actor="staff:cli",
            key=key,
            reason=reason,
            activity=activity,
            points=points,
            event=event,
        )
    except MyKeyError as error:
        _fail(error)
    again = " (already granted with this key / 付与済み)" if receipt.replayed else ""
    out.print(
        f"{receipt.mykey_id}: +{receipt.points:,} points, balance {receipt.balance:,},"
        f" valid until {receipt.expires_on}{again}"
    )


partners_app = typer.Typer(help="Partners and agreements / 協力企業・協定", no_args_is_help=True)
points_app = typer.Typer(help="Municipal points / 自治体ポイント", no_args_is_help=True)
app.add_typer(partners_app, name="partners")
app.add_typer(points_app, name="points")


@partners_app.command("add")
def partners_add(
    partner: Annotated[str, typer.Argument(help="partner id = service name, e.g. jal")],
    name: Annotated[str, typer.Option()],
    methods: Annotated[
        str,
        typer.Option(help="comma-separated: id_linkage, coupon_paper, coupon_email, coupon_url"),
    ] = "id_linkage",
) -> None:
    """Register a partner, or change its name and agreed methods."""
    from mykey.points.partners import set_partner

    try:
        view = set_partner(
            _uow(), partner=partner, name=name, methods=[m.strip() for m in methods.split(",")]
        )
    except MyKeyError as error:
        _fail(error)
    out.print(f"Partner {view.id}: {view.name} ({', '.join(view.methods)})")


@partners_app.command("agree")
def partners_agree(
    partner: str,
    effective_from: Annotated[
        str, typer.Option("--from", help="YYYY-MM-DD (Tokyo), today or later")
    ],
    rate_units: Annotated[int, typer.Option(help="this many partner units …")],
    rate_points: Annotated[int, typer.Option(help="… make this many points")],
    minimum: Annotated[int, typer.Option(help="units at least per conversion")],
    step: Annotated[int, typer.Option(help="units are a multiple of this")],
    daily_limit: Annotated[int | None, typer.Option(help="units per resident per day")] = None,
    partner_daily_limit: Annotated[
        int | None, typer.Option(help="units per day, all residents")
    ] = None,
) -> None:
    """Record new terms with a partner from a date (earlier terms are never edited)."""
    from datetime import date

    from mykey.points.partners import add_agreement

    try:
        day = date.fromisoformat(effective_from)
    except ValueError:
        err.print("--from is a date YYYY-MM-DD. / 日付は YYYY-MM-DD で指定してください")
        raise typer.Exit(2) from None
    try:
        terms = add_agreement(
            _uow(),
            partner=partner,
            effective_from=day,
            rate_units=rate_units,
            rate_points=rate_points,
            minimum=minimum,
            step=step,
            daily_limit=daily_limit,
            partner_daily_limit=partner_daily_limit,
            actor="operator:cli",
        )
    except MyKeyError as error:
        _fail(error)
    out.print(
        f"{terms.partner} from {terms.effective_from}: {terms.rate_units:,} units →"
        f" {terms.rate_points:,} points, minimum {terms.minimum:,}, step {terms.step:,}"
    )


@partners_app.command("list")
def partners_list() -> None:
    """Every partner, its methods and the terms in force from each date."""
    from mykey.points.partners import list_partners

    table = Table(
        "partner / 協力企業",
        "methods / 方式",
        "from / 適用開始",
        "rate / レート",
        "min / 最低",
        "step / 単位",
        "daily / 日次上限",
    )
    for view in list_partners(_uow()):
        for n, a in enumerate(view.agreements or [None]):
            first = n == 0
            table.add_row(
                f"{view.id} {view.name}" if first else "",
                ", ".join(view.methods) if first else "",
                str(a.effective_from) if a else "-",
                f"{a.rate_units:,} → {a.rate_points:,}" if a else "-",
                f"{a.minimum:,}" if a else "-",
                f"{a.step:,}" if a else "-",
                f"{a.daily_limit:,}" if a and a.daily_limit else "-",
            )
    out.print(table)


@partners_app.command("key")
def partners_key(partner: str, label: Annotated[str, typer.Option()] = "") -> None:
    """Issue a partner API key and its HMAC signing secret (both shown once)."""
    from mykey.points.partner_keys import issue_partner_key

    try:
        issued = issue_partner_key(
            _uow(), partner=partner, label=label, secret_key=get_settings().secret_key
        )
    except MyKeyError as error:
        _fail(error)
    out.print(f"Partner key {issued.key_id} for {issued.partner} (shown once / 一度だけ表示):")
    out.print(f"API key / API キー:        {issued.api_key}", soft_wrap=True)
    out.print(f"Signing secret / 署名鍵:   {issued.signing_secret}", soft_wrap=True)


@partners_app.command("receivables")
def partners_receivables(partner: Annotated[str | None, typer.Argument()] = None) -> None:
    """What each partner owes each municipality (1 yen per converted point)."""
    from mykey.points.conversion import receivables

    table = Table("partner / 協力企業", "municipality / 自治体", "yen / 円")
    try:
        for r in receivables(_uow(), partner=partner):
            table.add_row(r.partner, r.municipality or "reserved / 留保", f"{r.points:,}")
    except MyKeyError as error:
        _fail(error)
    out.print(table)


@points_app.command("sweep-reserved")
def points_sweep_reserved(
    as_of: Annotated[
        str | None,
        typer.Option(
            help="YYYY-MM-DD (Tokyo), today or earlier: run as on that day; points converted on"
            " day D are swept from day D+15 (default: today)"
        ),
    ] = None,
) -> None:
    """Assign reserved points the residents left unassigned through the 14th Tokyo day after
    their conversion to each resident's default municipality (safe to run again)."""
    from mykey.points.reserved import sweep_candidates, sweep_reserved

    day = _as_of(
        as_of,
        ("residents may still assign those points", "住民がまだ自分で振り分けできるポイントです"),
    )
    uow = _uow()
    try:
        with _progress() as progress:
            task = progress.add_task("Sweeping / 振り分け中", total=sweep_candidates(uow) or None)
            report = sweep_reserved(uow, as_of=day, progress=lambda n: progress.advance(task, n))
    except MyKeyError as error:
        _fail(error)
    out.print(
        f"Assigned {report.points:,} points (+{report.premium:,} premium) of {report.residents:,}"
        f" residents as of {day}; skipped {report.skipped_residents:,} without a default"
        f" municipality ({report.skipped_points:,} points); {report.failed_residents:,} refused."
        f" / {report.residents:,} 人の {report.points:,} ポイントを振り分けました"
    )


corrections_app = typer.Typer(
    help="Correction cases with two approvals / 訂正案件（二者承認）", no_args_is_help=True
)
app.add_typer(corrections_app, name="corrections")


@corrections_app.command("list")
def corrections_list(
    municipality: Annotated[str | None, typer.Option(help="6-digit code; all if omitted")] = None,
    status: Annotated[
        str | None, typer.Option(help="proposed, approved, rejected or withdrawn")
    ] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 100,
) -> None:
    """Correction cases, newest first: what moved, what the budget paid, what is claimed."""
    from mykey.points.corrections import list_corrections

    try:
        cases = list_corrections(_uow(), municipality=municipality, status=status, limit=limit)
    except MyKeyError as error:
        _fail(error)
    table = Table(
        "case / 案件",
        "code / 自治体",
        "kind / 種類",
        "reason / 理由",
        "status / 状態",
        "points",
        "from → to",
        "moved",
        "funded",
        "claimed",
        "proposed / 起案",
        "decided / 決裁",
    )
    for case in cases:
        table.add_row(
            str(case.id)[:8],
            case.municipality,
            case.kind,
            case.reason_label[0],
            case.status,
            f"{case.points:,}",
            f"{case.wrong_mykey_id} → {case.right_mykey_id or 'budget'}",
            f"{case.moved:,}",
            f"{case.funded:,}",
            f"{case.claimed:,}",
            case.proposed_by,
            case.decided_by or "",
        )
    out.print(table)
    out.print(f"{len(cases)} case(s) / 件")


accruals_app = typer.Typer(
    help="Accumulating programs: year-end close, payouts / 積立ポイントの年度末処理",
    no_args_is_help=True,
)
rankings_app = typer.Typer(help="Rankings of points earned / ランキング", no_args_is_help=True)
app.add_typer(accruals_app, name="accruals")
app.add_typer(rankings_app, name="rankings")


@accruals_app.command("close")
def accruals_close(
    municipality: Annotated[str, typer.Option(help="6-digit local government code")],
    fiscal_year: Annotated[int, typer.Option(help="e.g. 2026 for April 2026 to March 2027")],
) -> None:
    """Close a fiscal year: accrued points become payouts or donations (safe to re-run)."""
    from mykey.points.accruals import accruals_to_close, close_accrual_year

    uow = _uow()
    try:
        total = accruals_to_close(uow, municipality=municipality, fiscal_year=fiscal_year)
        with _progress() as progress:
            task = progress.add_task("Closing accruals / 年度末処理中", total=total)
            report = close_accrual_year(
                uow,
                municipality=municipality,
                fiscal_year=fiscal_year,
                actor="staff:cli",
                progress=lambda n: progress.advance(task, n),
            )
    except MyKeyError as error:
        _fail(error)
    out.print(
        f"Fiscal {report.fiscal_year}: {report.payouts} payouts ({report.payout_points:,} yen),"
        f" {report.donations} donations ({report.donation_points:,} points),"
        f" {report.already_closed} closed before, {report.empty} with nothing left."
        f" / 支払 {report.payouts} 件・寄付 {report.donations} 件"
    )


@accruals_app.command("payouts")
def accruals_payouts(
    municipality: Annotated[str, typer.Option(help="6-digit local government code")],
    fiscal_year: Annotated[int | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option(help="pending or paid")] = None,
) -> None:
    """Payouts of closed accruals: yen owed to residents, and those paid."""
    from mykey.points.accruals import closings

    try:
        found = closings(
            _uow(),
            municipality=municipality,
            fiscal_year=fiscal_year,
            outcome="payout",
            status=status,
        )
    except MyKeyError as error:
        _fail(error)
    table = Table("year / 年度", "MyKey ID", "yen / 円", "status / 状態", "reference / 参照")
    for c in found:
        table.add_row(
            str(c.fiscal_year), c.mykey_id, f"{c.points:,}", c.status, c.paid_reference or ""
        )
    out.print(table)


@rankings_app.command("show")
def rankings_show(
    municipality: Annotated[str, typer.Option(help="6-digit local government code")],
    start: Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD (JST)")],
    end: Annotated[str, typer.Option("--to", help="last day, YYYY-MM-DD (JST), included")],
    activity: Annotated[str | None, typer.Option(help="one activity, or every grant")] = None,
    top: Annotated[int, typer.Option(help="how many residents")] = 100,
    minimum: Annotated[int, typer.Option(help="at least this many points")] = 0,
) -> None:
    """The top residents by points granted in a period (ties: who reached it first)."""
    from mykey.points.rankings import rank

    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        err.print("Dates are YYYY-MM-DD / 日付は YYYY-MM-DD で指定してください")
        raise typer.Exit(2) from None
    try:
        ranking = rank(_uow(), municipality, activity, first, last, top, minimum)
    except MyKeyError as error:
        _fail(error)
    table = Table("rank / 順位", "MyKey ID", "points / ポイント", "reached / 到達")
    for r in ranking.rows:
        table.add_row(str(r.rank), r.mykey_id, f"{r.points:,}", r.reached_at.isoformat())
    out.print(table)


@rankings_app.command("award")
def rankings_award(
    municipality: Annotated[str, typer.Option(help="6-digit local government code")],
    start: Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD (JST)")],
    end: Annotated[str, typer.Option("--to", help="last day, YYYY-MM-DD (JST), included")],
    reason: Annotated[str, typer.Option(help="why (the grant's reason, printed on vouchers)")],
    key: Annotated[str, typer.Option(help="idempotency key: running it again gives once")],
    activity: Annotated[str | None, typer.Option(help="one activity, or every grant")] = None,
    top: Annotated[int, typer.Option(help="how many residents")] = 100,
    minimum: Annotated[int, typer.Option(help="at least this many points")] = 0,
    points: Annotated[int, typer.Option(help="points granted to each (0: none)")] = 0,
    voucher_count: Annotated[
        int, typer.Option(help="prize vouchers per winner (0: none)", show_default=False)
    ] = 0,
    voucher_value: Annotated[int, typer.Option(help="points per prize voucher")] = 500,
    voucher_days: Annotated[int, typer.Option(help="valid days, counting the day of issue")] = 90,
    voucher_street: Annotated[
        str | None, typer.Option(help="the vouchers are valid at this shopping street")
    ] = None,
    voucher_shop: Annotated[
        list[str] | None, typer.Option(help="or at these shops (repeat the option)")
    ] = None,
) -> None:
    """Give the ranked residents points, prize vouchers (from the budget), or both."""
    from mykey.points.rankings import award_ranking
    from mykey.points.vouchers import PrizeTerms

    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        err.print("Dates are YYYY-MM-DD / 日付は YYYY-MM-DD で指定してください")
        raise typer.Exit(2) from None
    prize = None
    if voucher_count:
        prize = PrizeTerms(
            count=voucher_count,
            face_value=voucher_value,
            valid_days=voucher_days,
            street_id=voucher_street,
            shop_ids=tuple(voucher_shop or ()),
        )
    uow = _uow()
    try:
        with _progress() as progress:
            task = progress.add_task("Awarding / 付与中", total=None)
            report = award_ranking(
                uow,
                municipality=municipality,
                activity=activity,
                start=first,
                end=last,
                top=top,
                minimum=minimum,
                points=points,
                reason=reason,
                actor="staff:cli",
                key=key,
                vouchers=prize,
                progress=lambda n: progress.advance(task, n),
            )
    except MyKeyError as error:
        _fail(error)
    table = Table("rank / 順位", "MyKey ID", "status / 状態", "vouchers / 券", "why / 理由")
    for o in report.outcomes:
        why = f"{o.code}: {o.message_ja}" if o.code else ""
        table.add_row(str(o.rank), o.mykey_id, o.status, str(len(o.vouchers)), why)
    out.print(table)
    out.print(
        f"Award {report.award_id}: {report.granted} given, {report.already} before,"
        f" {report.refused} refused. / 付与 {report.granted} 人・付与済み {report.already} 人・"
        f"不可 {report.refused} 人"
    )


@rankings_app.command("awards")
def rankings_awards(
    municipality: Annotated[str, typer.Option(help="6-digit local government code")],
) -> None:
    """The municipality's latest awards, newest first."""
    from mykey.points.rankings import list_awards

    try:
        found = list_awards(_uow(), municipality=municipality)
    except MyKeyError as error:
        _fail(error)
    table = Table("award / 付与", "period / 期間", "top / 人数", "prize / 賞品", "reason / 理由")
    for a in found:
        prize = [f"{a.points:,} pt"] if a.points else []
        if a.prize is not None:
            where = a.prize.street_id or ", ".join(a.prize.shop_ids)
            prize.append(f"{a.prize.count} × {a.prize.face_value:,} pt @ {where}")
        table.add_row(a.award_id, f"{a.start} – {a.end}", str(a.top), " + ".join(prize), a.reason)
    out.print(table)


@rankings_app.command("vouchers")
def rankings_vouchers(
    municipality: Annotated[str, typer.Option(help="6-digit local government code")],
    award: Annotated[str, typer.Option(help="the award id")],
    out_path: Annotated[Path, typer.Option("--out", help="the PDF or ZIP file to write")],
    mykey_id: Annotated[
        str | None, typer.Option(help="one winner's PDF (default: a ZIP of every winner's)")
    ] = None,
) -> None:
    """Print an award's prize vouchers: one winner's PDF, or a ZIP of one PDF per winner."""
    from mykey.municipalities.codes import parse_code
    from mykey.points.voucher_print import Viewer, print_prize, print_prizes_zip

    try:
        viewer = Viewer(municipality=parse_code(municipality))
        uow = _uow()
        if mykey_id is not None:
            content = print_prize(uow, award, mykey_id.upper(), viewer=viewer)
        else:
            content = print_prizes_zip(uow, award, viewer=viewer)
    except MyKeyError as error:
        _fail(error)
    out_path.write_bytes(content)
    out.print(f"Wrote {out_path} ({len(content):,} bytes) / {out_path} に書き出しました")


shops_app = typer.Typer(help="Shops and facilities / 加盟店・施設", no_args_is_help=True)
app.add_typer(shops_app, name="shops")


@shops_app.command("add")
def shops_add(
    shop: Annotated[str, typer.Argument(help="shop id = its provider id, e.g. arts-maebashi")],
    name: Annotated[str, typer.Option()],
    municipality: Annotated[str, typer.Option(help="6-digit code of where the shop is")],
    kind: Annotated[str, typer.Option(help="shop, large_store, museum, hot_spring, online …")],
    accepts: Annotated[str, typer.Option(help="comma-separated codes whose points are taken")],
    street: Annotated[str | None, typer.Option(help="shopping street id")] = None,
) -> None:
    """Register a shop or facility (and its provider), or change it."""
    from mykey.points.shops import set_shop

    try:
        view = set_shop(
            _uow(),
            shop_id=shop,
            name=name,
            municipality=municipality,
            kind=kind,
            accepts=[c.strip() for c in accepts.split(",") if c.strip()],
            street_id=street,
        )
    except MyKeyError as error:
        _fail(error)
    out.print(f"Shop {view.id}: {view.name} ({view.kind}) accepts {', '.join(view.accepts)}")


@shops_app.command("list")
def shops_list(
    municipality: Annotated[
        str | None, typer.Option(help="only shops taking this municipality's points")
    ] = None,
) -> None:
    """Shops and facilities, and whose points they take."""
    from mykey.points.shops import list_shops

    try:
        found = list_shops(_uow(), municipality=municipality)
    except MyKeyError as error:
        _fail(error)
    table = Table("id", "name / 名称", "kind / 種別", "municipality", "street", "accepts")
    for v in found:
        table.add_row(v.id, v.name, v.kind, v.municipality, v.street_id or "", ", ".join(v.accepts))
    out.print(table)


@shops_app.command("online-key")
def shops_online_key(
    shop: Annotated[str, typer.Argument(help="an online shop's id (kind online)")],
    label: Annotated[str, typer.Option()] = "",
) -> None:
    """Issue an online shop's API key and its HMAC signing secret (both shown once)."""
    from mykey.points.online import issue_online_key

    try:
        issued = issue_online_key(
            _uow(), shop=shop, label=label, secret_key=get_settings().secret_key
        )
    except MyKeyError as error:
        _fail(error)
    out.print(f"Online key {issued.key_id} for {issued.shop} (shown once / 一度だけ表示):")
    out.print(f"API key / API キー:        {issued.api_key}", soft_wrap=True)
    out.print(f"Signing secret / 署名鍵:   {issued.signing_secret}", soft_wrap=True)


@points_app.command("expire")
def points_expire(
    as_of: LapsedBefore = None,
    municipality: Annotated[str | None, typer.Option(help="only this ledger")] = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000)] = 500,
) -> None:
    """Expire lapsed points to each municipality's expiry account (safe to run again, or to
    stop and run again: each batch commits on its own)."""
    from mykey.points.expiry import count_lapsed, expire_points

    day = _as_of(as_of)
    try:
        with _progress() as progress:
            total = count_lapsed(_uow(), as_of=day, municipality=municipality)
            task = progress.add_task("Expiring lots / 失効処理中", total=total or None)
            report = expire_points(
                _uow(),
                as_of=day,
                municipality=municipality,
                batch=batch,
                progress=lambda n: progress.advance(task, n),
            )
    except MyKeyError as error:
        _fail(error)
    out.print(
        f"Expired {report.lots:,} lots, {report.points:,} points (as of {day})."
        f" / {report.lots:,} ロット・{report.points:,} ポイントを失効しました。"
    )


def main() -> None:
    from pydantic import ValidationError

    try:
        app()
    except ValidationError as error:
        if error.title != "Settings":
            raise
        # A setting in the environment is wrong (MYKEY_TRUSTED_PROXIES=nginx, no secret key in
        # production, …): say which and stop, as a message, not a traceback.
        for problem in error.errors():
            message = str(problem["msg"]).removeprefix("Value error, ")
            where = ".".join(str(part) for part in problem["loc"])
            if not message.startswith("MYKEY_") and where:
                message = f"MYKEY_{where.upper()}: {message}"
            err.print(f"[bold red]設定エラー / Setting error[/] {escape(message)}")
        raise SystemExit(2) from None


coupons_app = typer.Typer(help="Coupon codes / クーポンコード", no_args_is_help=True)
app.add_typer(coupons_app, name="coupons")


@coupons_app.command("order")
def coupons_order(
    partner: Annotated[str, typer.Option(help="partner id, e.g. saison")],
    count: Annotated[int, typer.Option(help="coupons, 1 to 100,000")],
    units: Annotated[int, typer.Option(help="partner units per coupon")],
    expires: Annotated[str, typer.Option(help="last day to redeem, YYYY-MM-DD (JST)")],
    out_file: Annotated[Path, typer.Option("--out", help="CSV file to write")],
    delivery: Annotated[str, typer.Option(help="paper, email or url")] = "paper",
    key: Annotated[str | None, typer.Option(help="idempotency key (default: new)")] = None,
    base_url: Annotated[str, typer.Option(help="My Page's address, for url coupons")] = "",
) -> None:
    """Issue a batch of coupon codes and write them as CSV (UTF-8 with BOM) for the print shop
    or the mailing."""
    import uuid

    from mykey.points.coupons import csv_text, order_batch

    try:
        last = date.fromisoformat(expires)
    except ValueError:
        err.print("Dates are YYYY-MM-DD / 日付は YYYY-MM-DD で指定してください")
        raise typer.Exit(2) from None
    with _progress() as progress:
        task = progress.add_task("Issuing / 発行中", total=max(count, 1))
        try:
            ordered = order_batch(
                _uow(),
                partner=partner,
                count=count,
                units=units,
                delivery=delivery,
                expires_on=last,
                actor=f"cli:{partner}",
                key=key or uuid.uuid4().hex,
                secret_key=get_settings().secret_key,
                progress=lambda n: progress.advance(task, n),
            )
        except MyKeyError as error:
            _fail(error)
    out_file.write_text(
        "\ufeff" + csv_text(ordered.batch, ordered.coupons, base_url=base_url),
        encoding="utf-8",
        newline="",
    )
    out.print(
        f"Batch {ordered.batch.id}: {ordered.batch.count:,} coupons of {units:,} units,"
        f" until {last} → {out_file} / {ordered.batch.count:,} 枚を発行しました"
    )


@points_app.command("void-expired")
def points_void_expired() -> None:
    """Release online holds (authorizations) whose time has passed, giving the points back."""
    from mykey import ledger

    count = ledger.void_expired(_uow())
    out.print(f"Released {count} expired holds. / 期限切れの仮売上 {count} 件を解放しました")


@points_app.command("expire-vouchers")
def points_expire_vouchers(
    as_of: Annotated[
        str | None,
        typer.Option(
            help="YYYY-MM-DD (Tokyo), today or earlier: vouchers whose last day is before it go"
            " back (default: today)"
        ),
    ] = None,
) -> None:
    """Send unredeemed point vouchers past their last day back: a resident's to their wallet,
    a receipt voucher to the municipality's expiry account (safe to run again)."""
    from mykey.points.vouchers import count_expiring, expire_vouchers

    day = _as_of(as_of)
    try:
        with _progress() as progress:
            total = count_expiring(_uow(), as_of=day)
            task = progress.add_task(
                "Expiring vouchers / ポイント券失効処理中", total=total or None
            )
            report = expire_vouchers(
                _uow(), as_of=day, progress=lambda n: progress.advance(task, n)
            )
    except MyKeyError as error:
        _fail(error)
    out.print(
        f"Returned {report.vouchers:,} vouchers, {report.points:,} points (as of {day})."
        f" / ポイント券 {report.vouchers:,} 枚・{report.points:,} ポイントを戻しました。"
    )


def _show_bank(bank: object, *lines: str) -> None:
    from mykey.settlement.payouts import BankAccount

    assert isinstance(bank, BankAccount)
    for line in lines:
        out.print(line)
    out.print(
        f"  bank {bank.bank_code} {bank.bank_name}  branch {bank.branch_code} {bank.branch_name}"
        f"  type {bank.deposit_type}  account {bank.masked_number}"
    )


def _all_or_none(given: dict[str, object]) -> bool:
    """True if every option is given, False if none is; otherwise exit naming the missing."""
    missing = [name for name, value in given.items() if value is None]
    if not missing:
        return True
    if len(missing) == len(given):
        return False
    err.print(
        f"Give all of these to register an account, or none to show it: {', '.join(missing)}"
        f" / 口座を登録するには次も指定してください: {', '.join(missing)}"
    )
    raise typer.Exit(2)


@shops_app.command("payout-account")
def shops_payout_account(
    shop: Annotated[str, typer.Argument(help="shop id")],
    bank: Annotated[str | None, typer.Option(help="bank code, 4 digits")] = None,
    branch: Annotated[str | None, typer.Option(help="branch code, 3 digits")] = None,
    deposit_type: Annotated[
        int | None, typer.Option("--type", help="1 普通, 2 当座, 4 貯蓄, 9 その他")
    ] = None,
    number: Annotated[str | None, typer.Option(help="account number, up to 7 digits")] = None,
    holder: Annotated[str | None, typer.Option(help="account holder in kana, up to 30")] = None,
    bank_name: Annotated[str, typer.Option(help="bank name in kana (optional)")] = "",
    branch_name: Annotated[str, typer.Option(help="branch name in kana (optional)")] = "",
) -> None:
    """Register the bank account a shop is paid into (a new version; old ones are kept), or
    show the current one when no account options are given."""
    from mykey.settlement.payouts import payout_account, set_payout_account

    given: dict[str, object] = {"--bank": bank, "--branch": branch, "--type": deposit_type}
    given |= {"--number": number, "--holder": holder}
    try:
        if _all_or_none(given):
            view = set_payout_account(
                _uow(),
                shop_id=shop,
                bank_code=bank or "",
                bank_name=bank_name,
                branch_code=branch or "",
                branch_name=branch_name,
                deposit_type=deposit_type or 0,  # all given (_all_or_none)
                account_number=number or "",
                holder_name=holder or "",
                actor="cli",
            )
        else:
            view = payout_account(_uow(), shop)
    except MyKeyError as error:
        _fail(error)
    state = "unchanged / 変更なし" if not view.changed else f"version {view.version}"
    _show_bank(
        view.account,
        f"Shop {view.shop_id} is paid to {view.holder_name} ({state}, since"
        f" {view.created_at:%Y-%m-%d %H:%M} UTC by {view.created_by})",
    )


@municipalities_app.command("bank-account")
def municipalities_bank_account(
    code: Annotated[str, typer.Argument(help="6-digit local government code")],
    requester: Annotated[
        str | None, typer.Option(help="requester code from the bank, 10 digits")
    ] = None,
    name: Annotated[str | None, typer.Option(help="requester name in kana, up to 40")] = None,
    bank: Annotated[str | None, typer.Option(help="bank code, 4 digits")] = None,
    branch: Annotated[str | None, typer.Option(help="branch code, 3 digits")] = None,
    deposit_type: Annotated[int | None, typer.Option("--type", help="1 普通, 2 当座, 9 その他")] = (
        None
    ),
    number: Annotated[str | None, typer.Option(help="account number, up to 7 digits")] = None,
    bank_name: Annotated[str, typer.Option(help="bank name in kana (optional)")] = "",
    branch_name: Annotated[str, typer.Option(help="branch name in kana (optional)")] = "",
) -> None:
    """Register the account a municipality pays its shops from (振込依頼人), or show the
    current one when no account options are given."""
    from mykey.settlement.payouts import paying_account, set_paying_account

    given: dict[str, object] = {
        "--requester": requester,
        "--name": name,
        "--bank": bank,
        "--branch": branch,
    }
    given |= {"--type": deposit_type, "--number": number}
    try:
        if _all_or_none(given):
            view = set_paying_account(
                _uow(),
                municipality=code,
                requester_code=requester or "",
                requester_name=name or "",
                bank_code=bank or "",
                bank_name=bank_name,
                branch_code=branch or "",
                branch_name=branch_name,
                deposit_type=deposit_type or 0,  # all given (_all_or_none)
                account_number=number or "",
                actor="cli",
            )
        else:
            view = paying_account(_uow(), code)
    except MyKeyError as error:
        _fail(error)
    state = "unchanged / 変更なし" if not view.changed else f"version {view.version}"
    _show_bank(
        view.account,
        f"Municipality {view.municipality} pays as {view.requester_name}"
        f" (requester {view.requester_code}; {state}, since"
        f" {view.created_at:%Y-%m-%d %H:%M} UTC by {view.created_by})",
    )


settle_app = typer.Typer(help="Monthly settlement in yen / 月次精算", no_args_is_help=True)
app.add_typer(settle_app, name="settle")


@settle_app.command("close")
def settle_close(
    month: Annotated[str, typer.Option(help="Tokyo month, YYYY-MM")],
    now: Annotated[
        str | None, typer.Option(help="ISO time to close at (tests); default: the clock")
    ] = None,
) -> None:
    """Close a month: record every statement and book its settlement transfer (once)."""
    from datetime import datetime

    from mykey.settlement.statements import close_month, municipality_ledgers

    moment = None
    if now is not None:
        try:
            moment = datetime.fromisoformat(now)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            err.print("--now is an ISO time with a zone / --now はタイムゾーン付きの日時です")
            raise typer.Exit(2)
    uow = _uow()
    try:
        with _progress() as progress:
            task = progress.add_task(
                "Closing ledgers / 台帳を締め中", total=len(municipality_ledgers(uow)) or None
            )
            report = close_month(
                uow,
                month=month,
                actor="system:cli",
                now=moment,
                progress=lambda _code: progress.advance(task, 1),
            )
    except MyKeyError as error:
        _fail(error)
    if report.status == "already_closed":
        out.print(
            f"{report.month} was already closed: nothing changed ({report.statements} statements)."
            f" / {report.month} は締め済みです。何も変更していません。"
        )
        return
    out.print(
        f"Closed {report.month}: {report.statements} statements in {report.ledgers} ledgers,"
        f" {report.transfers} settlement transfers. / {report.month} を締めました。"
    )


@settle_app.command("check")
def settle_check(month: Annotated[str, typer.Option(help="Tokyo month, YYYY-MM")]) -> None:
    """Recompute every statement of a closed month from the ledger; name any difference."""
    from mykey.settlement.statements import check_month

    try:
        result = check_month(_uow(), month=month)
    except MyKeyError as error:
        _fail(error)
    if result.ok:
        out.print(
            f"{result.month}: {result.statements} statements in {result.ledgers} ledgers match"
            f" the ledger and balance. / 精算明細は台帳と一致しています。"
        )
        return
    table = Table("municipality", "party", "what", "expected", "found")
    for d in result.differences:
        table.add_row(d.municipality, d.party, d.what, str(d.expected), str(d.found))
    err.print(table)
    err.print(
        f"[bold red]{len(result.differences)} differences[/] / 不一致が"
        f" {len(result.differences)} 件あります"
    )
    raise typer.Exit(1)


@settle_app.command("show")
def settle_show(
    month: Annotated[str, typer.Option(help="Tokyo month, YYYY-MM")],
    municipality: Annotated[str | None, typer.Option()] = None,
    party_kind: Annotated[str | None, typer.Option(help="partner, shop, association …")] = None,
    party: Annotated[str | None, typer.Option(help="the party's id")] = None,
) -> None:
    """The statements of a closed month."""
    from mykey.settlement.statements import list_statements

    try:
        found = list_statements(
            _uow(), month=month, municipality=municipality, party_kind=party_kind, party_id=party
        )
    except MyKeyError as error:
        _fail(error)
    table = Table("id", "municipality", "party", "transfers", "amount", "payable")
    for s in found:
        table.add_row(
            str(s.id),
            s.municipality,
            f"{s.party_kind}:{s.party_id}",
            str(s.transfers),
            f"{s.amount:,}",
            f"{s.payable:,}",
        )
    out.print(table)


@settle_app.command("zengin")
def settle_zengin(
    month: Annotated[str, typer.Option(help="closed Tokyo month, YYYY-MM")],
    municipality: Annotated[str, typer.Option(help="6-digit code of the paying municipality")],
    transfer_date: Annotated[str, typer.Option(help="the banks' transfer day, YYYY-MM-DD")],
    out_file: Annotated[Path, typer.Option("--out", help="where to write the file")],
    no_crlf: Annotated[bool, typer.Option(help="records back to back, no line breaks")] = False,
) -> None:
    """Write the Zengin general transfer file (総合振込, Shift_JIS) paying a closed month's
    shop statements from the municipality's bank account."""
    from mykey.settlement.payouts import month_payout_file

    try:
        day = date.fromisoformat(transfer_date)
    except ValueError:
        err.print(f"Not a date: {transfer_date!r} (YYYY-MM-DD) / 日付の形式が正しくありません")
        raise typer.Exit(2) from None
    try:
        plan, data = month_payout_file(
            _uow(), municipality=municipality, month=month, transfer_date=day, crlf=not no_crlf
        )
    except MyKeyError as error:
        _fail(error)
    out_file.write_bytes(data)
    out.print(
        f"{out_file}: {len(plan.payouts)} transfers, {plan.total:,} yen to shops for"
        f" {plan.month}, on {day:%Y-%m-%d}. / {len(plan.payouts)} 件・{plan.total:,} 円の振込データ"
    )
    for owed in plan.owed:
        out.print(
            f"  {owed.shop_id} owes {owed.amount:,} yen (refunds above its sales) / 返金超過のため"
            f"店舗 {owed.shop_id} から {owed.amount:,} 円を請求"
        )


vouchers_app = typer.Typer(
    help="Point vouchers and gift certificates / ポイント券・商品券", no_args_is_help=True
)
app.add_typer(vouchers_app, name="vouchers")


@vouchers_app.command("gift-program")
def vouchers_gift_program(
    program: Annotated[str, typer.Argument(help="programme id, e.g. maebashi-q")],
    municipality: Annotated[str, typer.Option(help="6-digit code")],
    name: Annotated[str, typer.Option(help="e.g. 前橋Qの町商品券")],
    denomination: Annotated[int, typer.Option(help="points per certificate")],
    valid_days: Annotated[int, typer.Option(help="days, counting the day of the exchange")],
    street: Annotated[
        str | None,
        typer.Option(help="valid at this street's shops (default: every shop taking the points)"),
    ] = None,
    max_sheets: Annotated[int | None, typer.Option(help="most sheets per exchange")] = None,
) -> None:
    """Set up or change a gift certificate programme (商品券, R6.5)."""
    from mykey.points.gifts import set_gift_program

    try:
        view = set_gift_program(
            _uow(),
            program_id=program,
            municipality=municipality,
            name=name,
            denomination=denomination,
            valid_days=valid_days,
            street_id=street,
            max_sheets=max_sheets,
        )
    except MyKeyError as error:
        _fail(error)
    where = view.street_name or view.street_id or "every shop taking the points / 全取扱店舗"
    most = f", at most {view.max_sheets} sheets" if view.max_sheets else ""
    out.print(
        f"Gift programme {view.id}: {view.name}, {view.denomination:,} points a sheet, valid"
        f" {view.valid_days} days at {where}{most}."
    )


@vouchers_app.command("gift-programs")
def vouchers_gift_programs(
    municipality: Annotated[str, typer.Option(help="6-digit code")],
) -> None:
    """The gift certificate programmes of a municipality."""
    from mykey.points.gifts import list_gift_programs

    try:
        found = list_gift_programs(_uow(), municipality=municipality)
    except MyKeyError as error:
        _fail(error)
    table = Table("id", "name / 名称", "denomination / 券面", "days / 有効日数", "street", "max")
    for v in found:
        table.add_row(
            v.id,
            v.name,
            f"{v.denomination:,}",
            str(v.valid_days),
            v.street_id or "",
            str(v.max_sheets or ""),
        )
    out.print(table)


# --- the history log (R8) ---------------------------------------------------------------------

log_app = typer.Typer(
    help="The tamper-evident history log / 改ざん検知履歴ログ", no_args_is_help=True
)
audit_app = typer.Typer(help="Audits of the history / 履歴の監査", no_args_is_help=True)
app.add_typer(log_app, name="log")
app.add_typer(audit_app, name="audit")
log_app.command("checkpointer")(checkpointer)


@log_app.command("checkpoint")
def log_checkpoint() -> None:
    """Integrate queued entries and sign a checkpoint now; print it / チェックポイント作成."""
    from mykey.history.log import make_checkpoint

    try:
        signed = make_checkpoint(_uow(), history_log(get_settings()))
    except MyKeyError as error:
        _fail(error)
    sys.stdout.write(signed.note)


@log_app.command("rotate-key")
def log_rotate_key(
    new_key: Annotated[
        str,
        typer.Option(
            "--new-key",
            help="the new signing key (PRIVATE+KEY+…, `mykey log new-key <the log's name>`),"
            " or @FILE",
        ),
    ],
    wait: Annotated[
        float,
        typer.Option(help="seconds to wait for every configured witness to cosign the handoff"),
    ] = 0,
) -> None:
    """Change the log's signing key: record the new key in the log, signed by both keys, and
    sign with the current key the checkpoint that commits to it, for the witnesses to cosign.
    Run it with the current key configured; then configure the new key / 署名鍵の交代."""
    from mykey.history.checkpoints import NoteError, Signer
    from mykey.history.log import dev_key_path, dev_salt_key_path, rotate_key

    settings = get_settings()
    log = history_log(settings)
    try:
        text = Path(new_key[1:]).read_text() if new_key.startswith("@") else new_key
        new = Signer.from_key(text)
    except (NoteError, OSError) as exc:
        err.print(f"[bold red]エラー / Error[/] the new key: {exc}")
        raise typer.Exit(2) from None
    try:
        done = rotate_key(_uow(), log, new)
    except MyKeyError as error:
        _fail(error)
    size = done.handoff.checkpoint.size
    out.print(
        f"Key rotation {done.rotation.number} {'finished' if done.resumed else 'recorded'} at"
        f" entry {done.index}: {_short_key(done.rotation.old_key)} ->"
        f" {_short_key(done.rotation.new_key)}. Checkpoint {size}, signed with the previous"
        f" key, commits to it. / 鍵の交代をログに記録しました。",
        soft_wrap=True,
    )
    out.print(f"new verifier key / 新しい検証鍵: {done.rotation.new_key}", soft_wrap=True)
    if not settings.log_signing_key and settings.environment != "production":
        retired = dev_key_path().with_name(f"signing-key.{log.signer.key_id:08x}.retired")
        dev_key_path().replace(retired)
        _write_dev_secret(dev_salt_key_path(), log.salt_key.hex())
        _write_dev_secret(dev_key_path(), new.key_string())
        out.print(
            f"Development keys: var/log/signing-key is the new key, var/log/salt-key the log's"
            f" salt key; the previous key is {retired.name}. / 開発用の鍵を更新しました。",
            soft_wrap=True,
        )
    else:
        sys.stdout.write(f"MYKEY_LOG_SALT_KEY={log.salt_key.hex()}\n")
        err.print(
            "Next: set MYKEY_LOG_SIGNING_KEY to the new key and MYKEY_LOG_SALT_KEY to the value"
            " above (secret; it stays with the log), restart, and publish the new verifier key."
            " / 次に新しい鍵と上のソルト鍵を設定して再起動し、新しい検証鍵を公開してください。",
            soft_wrap=True,
        )
    if wait > 0 and not _witnessed(settings, size, wait):
        raise typer.Exit(1)


def _short_key(vkey: str) -> str:
    return "+".join(vkey.split("+")[:2])


def _write_dev_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(value + "\n")
    partial.chmod(0o600)
    partial.replace(path)


def _witnessed(settings: Settings, size: int, seconds: float) -> bool:
    """Wait until every witness in MYKEY_LOG_WITNESSES has cosigned the checkpoint of `size`."""
    import time

    from sqlalchemy import select

    from mykey.history.witnessing import COSIGNATURES

    wanted = {v.strip().split("+")[0] for v in settings.log_witnesses.split(",") if v.strip()}
    deadline = time.monotonic() + seconds
    seen: set[str] = set()
    uow = _uow()

    def cosigners() -> set[str]:
        query = select(COSIGNATURES.c.witness).where(COSIGNATURES.c.size == size)
        return {str(r[0]) for r in uow.connection.execute(query)}

    while True:
        seen = uow.read(cosigners)
        if wanted <= seen or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for name in sorted(wanted):
        mark = "cosigned / 連署済み" if name in seen else "[bold red]not yet / 未連署[/]"
        out.print(f"witness {name}: {mark}")
    if not wanted <= seen:
        err.print(
            f"[bold red]Not every witness cosigned checkpoint {size} within {seconds:g} s.[/] The"
            " rotation is recorded; wait for them before signing with the new key. /"
            " まだ連署していない証人があります。"
        )
        return False
    return True


@log_app.command("key")
def log_key() -> None:
    """Print the log's verifier key (publish it; residents and witnesses check with it)."""
    from mykey.history.log import signer_of

    out.print(signer_of(get_settings()).verifier().vkey(), soft_wrap=True)


def _new_key(generate: Callable[[], Signer | Cosigner]) -> None:
    """Print a new Ed25519 note key (stdout, once) and its verifier key (stderr)."""
    from mykey.history.checkpoints import NoteError

    try:
        key = generate()
    except NoteError as exc:
        err.print(f"[bold red]Error[/] {exc}")
        raise typer.Exit(2) from None
    sys.stdout.write(key.key_string() + "\n")
    err.print(f"verifier key / 検証鍵: {key.verifier().vkey()}", soft_wrap=True)


@log_app.command("new-key")
def log_new_key(
    origin: Annotated[str, typer.Argument(help="the log's origin, e.g. points.example.jp/tx/2026")],
) -> None:
    """Make a signing key for MYKEY_LOG_SIGNING_KEY (printed once; keep it secret)."""
    from mykey.history.checkpoints import Signer

    _new_key(lambda: Signer.generate(origin))


@log_app.command("verify-proof")
def log_verify_proof(
    proof: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="receipt JSON")],
    checkpoint: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="signed checkpoint")
    ],
    key: Annotated[str | None, typer.Option(help="verifier key (default: this log's)")] = None,
) -> None:
    """Check a resident's inclusion proof against a signed checkpoint / 包含証明の検証."""
    from mykey.history.log import signer_of
    from mykey.history.verify import main

    vkey = key or signer_of(get_settings()).verifier().vkey()
    code = main([str(proof), str(checkpoint), "--key", vkey])
    if code:
        raise typer.Exit(code)


@audit_app.command("verify")
def audit_verify(
    witness: Annotated[
        str | None, typer.Option(help="also compare with this witness's copy (its URL)")
    ] = None,
    policy: Annotated[
        Path | None, typer.Option(help="tlog-policy file the witness's checkpoint must meet")
    ] = None,
    witness_token: Annotated[
        str, typer.Option(envvar="MYKEY_WITNESS_TOKEN", help="the witness's read token")
    ] = "",
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="processes for a log of 131,072 entries or more (default: cores)"),
    ] = None,
) -> None:
    """Recompute every leaf from its record and the tree from the leaves; compare with the
    stored tree and the last checkpoint (and with a witness's copy); name every entry that
    differs / 履歴の検証."""
    from mykey.history import audit

    settings = get_settings()
    with _progress() as bar:
        task = bar.add_task("Auditing / 検証中", total=None)

        def advance(done: int, of: int) -> None:
            bar.update(task, completed=done, total=of)

        report = audit.verify(_uow(), history_log(settings), workers=workers, progress=advance)
    if witness is not None:
        copy = _witness_copy(witness, policy, witness_token)
        from mykey.history.restore import compare

        report.findings.extend(compare(_uow(), history_log(settings), copy))
        out.print(
            f"compared with witness {witness}: cosigned size {copy.checkpoint.size}"
            f" / 証人の写しと比較しました (サイズ {copy.checkpoint.size})"
        )
    out.print(
        f"{report.entries:,} entries, {report.queued:,} queued, {report.records:,} records,"
        f" last checkpoint size {report.checkpoint_size}"
        f" / 項目 {report.entries:,} 件・待ち {report.queued:,} 件・記録 {report.records:,} 件"
    )
    if report.ok:
        out.print("OK: the history matches its records. / 履歴は記録と一致しています。")
        return
    for f in report.findings:
        if f.index is not None:
            where = f"index {f.index}"
        else:
            where = "queued" if f.problem in ("altered", "removed") else ""
        what = f"{f.kind} {f.record_id}" if f.kind else ""
        named = "".join(f" {part}" for part in (where, what) if part)
        out.print(
            f"[bold red]{f.problem}[/]{escape(named)}: {escape(f.detail)}",
            soft_wrap=True,
            highlight=False,
        )
    err.print(
        f"[bold red]{len(report.findings)} problem(s) found[/] / 不一致が"
        f" {len(report.findings)} 件見つかりました"
    )
    raise typer.Exit(1)


staff_app = typer.Typer(
    help="Staff accounts of the web pages / 職員アカウント", no_args_is_help=True
)
app.add_typer(staff_app, name="staff")


@staff_app.command("add")
def staff_add(
    username: Annotated[str, typer.Argument(help="3 to 64 of a-z 0-9 . - _")],
    role: Annotated[str, typer.Option(help="operator | municipality_staff | partner | shop_staff")],
    municipality: Annotated[
        str | None, typer.Option(help="6-digit code (municipality_staff)")
    ] = None,
    partner: Annotated[str | None, typer.Option(help="partner id (partner)")] = None,
    shop: Annotated[str | None, typer.Option(help="shop id (shop_staff)")] = None,
    password_file: Annotated[
        Path | None,
        typer.Option(help="read the password from this file's first line (else prompted)"),
    ] = None,
) -> None:
    """Add a staff account for the web pages; the password is prompted (or read from a file)."""
    from mykey.identity.staff import add_staff

    if password_file is not None:
        lines = password_file.read_text(encoding="utf-8").splitlines()
        password = lines[0] if lines else ""
    else:
        password = typer.prompt("Password / パスワード", hide_input=True, confirmation_prompt=True)
    try:
        member = add_staff(
            _uow(),
            username=username,
            password=password,
            role=role,
            municipality=municipality,
            partner_id=partner,
            shop_id=shop,
        )
    except MyKeyError as error:
        _fail(error)
    bound = member.municipality or member.partner_id or member.shop_id or "council"
    out.print(
        f"Staff account {member.username} ({member.role.value}, {bound}) added; sign in at"
        " /login. / 職員アカウントを追加しました。"
    )


@app.command("demo-staff", hidden=True)
def demo_staff() -> None:
    """The demo's staff accounts (also made by `mykey demo`)."""
    _demo_staff()


def _demo_staff() -> None:
    from mykey import demo as demo_data

    try:
        made = demo_data.register_staff(_uow())
    except MyKeyError as error:
        _fail(error)
    if made:
        names = ", ".join(f"{name} ({role})" for name, role in made)
        out.print(
            f"Demo staff accounts: {names}; password {demo_data.DEMO_STAFF_PASSWORD!r}"
            " (sign in at /login). / デモ職員アカウント"
        )


def _witness_copy(url: str, policy: Path | None, token: str) -> WitnessCopy:
    from mykey.history.policy import Policy, PolicyError
    from mykey.history.restore import RestoreError, fetch_copy

    try:
        rules = Policy.load(policy) if policy is not None else None
        return fetch_copy(_uow(), history_log(get_settings()), url, token=token, policy=rules)
    except (RestoreError, PolicyError) as exc:
        err.print(f"[bold red]エラー / Error[/] {exc}")
        raise typer.Exit(2) from None


@audit_app.command("restore")
def audit_restore(
    from_: Annotated[str, typer.Option("--from", help="the witness's URL")],
    policy: Annotated[
        Path | None, typer.Option(help="tlog-policy file the witness's checkpoint must meet")
    ] = None,
    witness_token: Annotated[
        str, typer.Option(envvar="MYKEY_WITNESS_TOKEN", help="the witness's read token")
    ] = "",
) -> None:
    """Put the history back to a witness's cosigned copy: records and leaves changed,
    removed, wrongly typed, swapped, moved or added, the subtree hashes and checkpoints that
    follow, in one transaction; every row put back is recorded / 証人から復元."""
    from mykey.history.restore import RestoreError, restore

    settings = get_settings()
    copy = _witness_copy(from_, policy, witness_token)
    try:
        report = restore(_uow(), history_log(settings), copy)
    except RestoreError as exc:
        err.print(f"[bold red]エラー / Error[/] {exc} (nothing was changed / 変更していません)")
        raise typer.Exit(1) from None
    for target, index, record_id in report.restored:
        where = "" if index is None else f" index {index}"
        out.print(f"restored {target}{where} {record_id or ''}", soft_wrap=True)
    for line in report.not_restored:
        err.print(f"[yellow]not restored / 復元できません[/] {line}", soft_wrap=True)
    if not report.restored and not report.not_restored:
        out.print("Nothing to restore: the history matches the witness. / 復元の必要はありません。")
        return
    out.print(
        f"{len(report.restored)} row(s) restored from {from_} (checkpoint size"
        f" {report.checkpoint_size}) in one transaction; see history_restores."
        f" / {len(report.restored)} 件を復元しました。",
        soft_wrap=True,
    )
    if report.not_restored:
        raise typer.Exit(1)


# --- witnesses (R8.2) --------------------------------------------------------------------------

witness_app = typer.Typer(
    help="Witness another municipality's log / 他団体の履歴ログの証人", no_args_is_help=True
)
app.add_typer(witness_app, name="witness")

WitnessKey = Annotated[
    str,
    typer.Option(
        "--key",
        envvar="MYKEY_WITNESS_KEY",
        help="this witness's key (PRIVATE+KEY+…, `mykey witness new-key`), or @FILE",
    ),
]
LogUrl = Annotated[str, typer.Option("--log", help="the log's base URL")]
LogKey = Annotated[
    str, typer.Option("--log-key", envvar="MYKEY_WITNESS_LOG_KEY", help="the log's verifier key")
]
WitnessDb = Annotated[
    str, typer.Option("--db", envvar="MYKEY_WITNESS_DATABASE_URL", help="the witness's database")
]


def _witness_setup(log: str, log_key: str, key: str, db: str) -> tuple[WitnessConfig, Engine]:
    from mykey.history.checkpoints import NoteError, Verifier
    from mykey.history.cosign import Cosigner
    from mykey.history.witness import WitnessConfig
    from mykey.migrations import upgrade

    try:
        text = Path(key[1:]).read_text() if key.startswith("@") else key
        config = WitnessConfig(log, Verifier.from_vkey(log_key), Cosigner.from_key(text))
    except (NoteError, OSError) as exc:
        err.print(f"[bold red]エラー / Error[/] {exc}")
        raise typer.Exit(2) from None
    engine = make_engine(db)
    upgrade(engine)
    return config, engine


@witness_app.command("new-key")
def witness_new_key(
    name: Annotated[str, typer.Argument(help="the witness's name, e.g. witness.pref27.example.jp")],
) -> None:
    """Make a witness key (printed once; keep it secret) and print its verifier key."""
    from mykey.history.cosign import Cosigner

    _new_key(lambda: Cosigner.generate(name))


@witness_app.command("serve")
def witness_serve(
    log: LogUrl,
    log_key: LogKey,
    key: WitnessKey,
    db: WitnessDb,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8100,
    interval: Annotated[float, typer.Option(help="seconds between rounds")] = 10.0,
    token: Annotated[
        str, typer.Option(envvar="MYKEY_WITNESS_TOKEN", help="bearer token for /records")
    ] = "",
) -> None:
    """Follow a log, keep a full copy, cosign what is consistent, raise alarms / 証人を起動."""
    import logging

    import uvicorn

    from mykey.web.witness_app import create_witness_app

    config, engine = _witness_setup(log, log_key, key, db)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    application = create_witness_app(engine, config, token=token, follow_seconds=interval)
    out.print(f"Witness {config.cosigner.name} of {config.origin} on http://{host}:{port}")
    uvicorn.run(application, host=host, port=port, log_level="warning")


@witness_app.command("check")
def witness_check(log: LogUrl, log_key: LogKey, key: WitnessKey, db: WitnessDb) -> None:
    """One round now; exit 1 if this witness holds an alarm for the log, 2 on an error."""
    from mykey.history.witness import WitnessError, alarms, follow_once

    config, engine = _witness_setup(log, log_key, key, db)
    try:
        result = follow_once(UnitOfWork(engine), config)
    except WitnessError as exc:
        err.print(f"[bold red]エラー / Error[/] {exc}")
        raise typer.Exit(2) from None
    out.print(f"{result.outcome} size {result.size} {result.detail}", soft_wrap=True)
    found = alarms(UnitOfWork(engine), config.origin)
    for alarm in found:
        out.print(f"[bold red]ALARM / 警報[/] {alarm['problem']}: ", end="")
        sys.stdout.flush()
        out.print(
            f"{alarm['detail']}\ncosigned / 連署済み:\n{alarm['cosigned']}"
            f"conflicting / 矛盾:\n{alarm['conflicting']}",
            soft_wrap=True,
            highlight=False,
            markup=False,
        )
    if found:
        raise typer.Exit(1)
