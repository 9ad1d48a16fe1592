"""Ranking prizes as vouchers (R4.5, issue #13 item 3): Bungotakada's top walkers get ten
500-point vouchers of the Showa-no-machi shopping street each, funded by the town's budget,
printed one PDF per winner, redeemed once at a street shop, lapsing to breakage, settled to
the shop at month end (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime

import pytest

from mykey import ledger
from mykey.db import UnitOfWork, tokyo_date
from mykey.demo import MUNICIPALITIES
from mykey.errors import MyKeyError
from mykey.ledger import AccountKind
from mykey.municipalities.registry import upsert
from mykey.points.grants import grant_points
from mykey.points.models import BudgetUse, RankingAward, Voucher
from mykey.points.program_setup import Rule, set_up_program
from mykey.points.rankings import AwardReport, award_ranking, get_award, list_awards
from mykey.points.shops import set_shop, set_street
from mykey.points.voucher_print import (
    Viewer,
    print_prize,
    print_prizes_zip,
    print_voucher,
    prize_file_name,
)
from mykey.points.vouchers import PrizeTerms, expire_vouchers, redeem
from mykey.settlement import statements
from tests.conftest import Database
from tests.pdfs import read_pdf
from tests.points.test_accruals import make_residents

BUNGO, TSU = "442097", "242012"
WALKERS = ("WALK0001", "WALK0002", "WALK0003", "WALK0004")
STREET = "showa-no-machi"
STREET_SHOPS = ("showa-1", "showa-2")
OFF_STREET = "bungo-eki"
PRIZE = PrizeTerms(count=10, face_value=500, valid_days=30, street_id=STREET)
REASON = "健康ウォーク上位者（昭和の町商品券）"
GRANTED = 6 * 500 + 5 * 500 + 4 * 500 + 3 * 500  # the health-walk grants below


def _points(uow: UnitOfWork, kind: AccountKind, owner: str) -> int:
    return ledger.balance(
        uow, ledger.find_account(uow, ledger=BUNGO, kind=kind, owner=owner).id
    ).posted


def _wallet(uow: UnitOfWork, who: str) -> int:
    return _points(uow, AccountKind.WALLET, who)


def _budget_used(uow: UnitOfWork) -> int:
    return uow.run(
        lambda: sum(r.granted for r in uow.session.query(BudgetUse).filter_by(code=BUNGO))
    )


def set_up(database: Database, *, budget: int = 10**9) -> UnitOfWork:
    """Bungotakada's program (a budget), the Showa-no-machi street with two shops, a shop off
    the street, Tsu with a street of its own, and four walkers with 6, 5, 4 and 3 walks."""
    database.clock.now = datetime(2027, 1, 5, 1, 0, tzinfo=UTC)  # Jan 5, 10:00 Tokyo
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    for code in (BUNGO, TSU):
        set_up_program(
            uow,
            municipality=code,
            point_name="豊後高田市ポイント" if code == BUNGO else "津市ポイント",
            terms="",
            validity={},
            usable_at=["shop"],
            rules=[Rule("health_walk", "健康ウォーク", 500)],
            annual_budget=budget if code == BUNGO else None,
        )
    set_street(uow, street_id=STREET, name="豊後高田 昭和の町", municipality=BUNGO)
    set_street(uow, street_id="tsu-street", name="津の商店街", municipality=TSU)
    for shop_id, name, street in (
        ("showa-1", "昭和の町 駄菓子屋", STREET),
        ("showa-2", "昭和の町 食堂", STREET),
        (OFF_STREET, "宇佐駅前の土産店", None),
    ):
        set_shop(
            uow,
            shop_id=shop_id,
            name=name,
            municipality=BUNGO,
            kind="shop",
            accepts=[BUNGO],
            street_id=street,
        )
    make_residents(uow, *WALKERS)
    for walks, who in zip((6, 5, 4, 3), WALKERS, strict=True):
        for n in range(walks):
            grant_points(
                uow,
                municipality=BUNGO,
                mykey_id=who,
                actor="staff:bungo",
                key=f"walk-{who}-{n}",
                reason="ウォーク",
                activity="health_walk",
            )
    return uow


def award(
    uow: UnitOfWork,
    *,
    top: int = 3,
    points: int = 0,
    vouchers: PrizeTerms | None = PRIZE,
    key: str = "walk-prize-2026",
    actor: str = "staff:bungo",
) -> AwardReport:
    return award_ranking(
        uow,
        municipality=BUNGO,
        activity="health_walk",
        start=date(2026, 4, 1),
        end=date(2027, 3, 31),
        top=top,
        minimum=1500,
        points=points,
        reason=REASON,
        actor=actor,
        key=key,
        vouchers=vouchers,
    )


def test_top_walkers_get_ten_street_vouchers_from_the_budget(database: Database) -> None:
    uow = set_up(database)
    wallets = {who: _wallet(uow, who) for who in WALKERS}

    report = award(uow)

    assert (report.granted, report.already, report.refused) == (3, 0, 0)
    assert [o.mykey_id for o in report.outcomes] == list(WALKERS[:3])
    assert all(len(o.vouchers) == 10 and o.voucher_batch for o in report.outcomes)
    assert all(o.transfer_id is None for o in report.outcomes)  # no points were granted
    # the money: 3 × 10 × 500 left the budget into the voucher float, counted in the annual
    # budget, and no wallet moved (not even WALK0004, who was not in the top 3)
    assert _points(uow, AccountKind.BUDGET, BUNGO) == -(GRANTED + 15_000)
    assert _points(uow, AccountKind.VOUCHER_FLOAT, "vouchers") == 15_000
    assert _budget_used(uow) == GRANTED + 15_000
    assert {who: _wallet(uow, who) for who in WALKERS} == wallets

    # the same award again (a retry, or a second click) issues nothing more
    again = award(uow)
    assert (again.granted, again.already, again.refused) == (0, 3, 0)
    assert [o.vouchers for o in again.outcomes] == [o.vouchers for o in report.outcomes]
    assert database.count("vouchers") == 30
    assert _points(uow, AccountKind.VOUCHER_FLOAT, "vouchers") == 15_000
    assert _budget_used(uow) == GRANTED + 15_000
    with pytest.raises(MyKeyError) as reused:
        award(uow, vouchers=PrizeTerms(10, 500, 60, street_id=STREET))
    assert reused.value.code == "idempotency_key_reused"

    view = get_award(uow, report.award_id, municipality=BUNGO)
    assert view.prize == PRIZE and view.points == 0
    assert [(w.rank, w.mykey_id, w.vouchers) for w in view.winners] == [
        (1, "WALK0001", 10),
        (2, "WALK0002", 10),
        (3, "WALK0003", 10),
    ]
    assert [a.award_id for a in list_awards(uow, municipality=BUNGO)] == [report.award_id]
    with pytest.raises(MyKeyError) as elsewhere:
        get_award(uow, report.award_id, municipality=TSU)
    assert elsewhere.value.code == "unknown_award"


def test_each_winner_prints_as_one_pdf_of_ten_vouchers(database: Database) -> None:
    uow = set_up(database)
    report = award(uow, top=2)
    staff = Viewer(municipality=BUNGO)
    first = report.outcomes[0]

    pages = read_pdf(print_prize(uow, report.award_id, first.mykey_id, viewer=staff))

    assert len(pages) == 4  # three vouchers to an A4 page
    assert [n for p in pages for n in p.ean13] == list(first.vouchers)
    assert [n for p in pages for n in p.qr] == list(first.vouchers)
    text = "".join(p.text for p in pages)
    today = tokyo_date(database.clock.now)
    for seen in (
        "★★★ポイント券★★★",
        "500 ポイント",
        f"{REASON}（豊後高田市ポイント）",
        "★豊後高田 昭和の町の各店舗でご利用頂けます。",
        "大分県豊後高田市",
        "2027年1月5日～2027年2月3日",
        f"発行日：{today:%Y/%m/%d}",
    ):
        assert seen in text, seen
    assert text.count("発券番号：") == 10 and "再発行" not in text

    # all winners at once: a ZIP with one PDF per winner, in rank order; the second print
    # of the first winner's vouchers is marked as a reprint
    archive = zipfile.ZipFile(io.BytesIO(print_prizes_zip(uow, report.award_id, viewer=staff)))
    assert archive.namelist() == [
        prize_file_name(1, "WALK0001"),
        prize_file_name(2, "WALK0002"),
    ]
    second = read_pdf(archive.read(prize_file_name(2, "WALK0002")))
    assert [n for p in second for n in p.ean13] == list(report.outcomes[1].vouchers)
    reprint = read_pdf(archive.read(prize_file_name(1, "WALK0001")), dpi=72)
    assert "再発行 第2版" in reprint[0].text

    # the winner may print their own; another town's staff, another resident and a shop
    # where the vouchers are valid may not
    mine = print_prize(uow, report.award_id, first.mykey_id, viewer=Viewer(mykey_id="WALK0001"))
    assert mine.startswith(b"%PDF-")
    for viewer in (Viewer(municipality=TSU), Viewer(mykey_id="WALK0002")):
        with pytest.raises(MyKeyError) as hidden:
            print_prize(uow, report.award_id, first.mykey_id, viewer=viewer)
        assert hidden.value.code == "unknown_award"
    with pytest.raises(MyKeyError) as shop:
        print_voucher(uow, first.vouchers[0], viewer=Viewer(shop_id="showa-1"))
    assert shop.value.code == "unknown_voucher"
    with pytest.raises(MyKeyError) as zipped:
        print_prizes_zip(uow, report.award_id, viewer=Viewer(municipality=TSU))
    assert zipped.value.code == "unknown_award"


def test_redeemed_once_on_the_street_lapsing_to_breakage_and_settled(
    database: Database,
) -> None:
    uow = set_up(database)
    report = award(uow)
    numbers = [n for o in report.outcomes for n in o.vouchers]
    wallets = {who: _wallet(uow, who) for who in WALKERS}

    def use(shop: str, number: str, key: str) -> str:
        return str(redeem(uow, shop_id=shop, number=number, actor=f"terminal:{shop}", key=key))

    use("showa-1", numbers[0], "r-1")
    use("showa-2", numbers[1], "r-2")
    with pytest.raises(MyKeyError) as off:
        use(OFF_STREET, numbers[2], "r-3")
    assert off.value.code == "voucher_wrong_shop"
    with pytest.raises(MyKeyError) as twice:
        use("showa-2", numbers[0], "r-4")
    assert twice.value.code == "voucher_already_redeemed"
    assert _points(uow, AccountKind.SHOP, "showa-1") == 500  # its face value, no change
    assert _points(uow, AccountKind.SHOP, "showa-2") == 500
    assert _points(uow, AccountKind.VOUCHER_FLOAT, "vouchers") == 15_000 - 1000

    # valid 30 days counting the day of issue (Jan 5 … Feb 3, Tokyo)
    database.clock.now = datetime(2027, 2, 3, 14, 0, tzinfo=UTC)  # Feb 3, 23:00 Tokyo
    assert expire_vouchers(uow, as_of=tokyo_date(database.clock.now)).vouchers == 0
    with pytest.raises(MyKeyError) as early:  # run as of tomorrow, it would lapse them today
        expire_vouchers(uow, as_of=date(2027, 2, 4))
    assert early.value.code == "as_of_in_future"
    use("showa-1", numbers[2], "r-5")
    database.clock.now = datetime(2027, 2, 3, 15, 0, tzinfo=UTC)  # Feb 4, 00:00 Tokyo
    with pytest.raises(MyKeyError) as late:
        use("showa-1", numbers[3], "r-6")
    assert late.value.code == "voucher_expired"
    lapsed = expire_vouchers(uow, as_of=tokyo_date(database.clock.now))
    assert (lapsed.vouchers, lapsed.points) == (27, 27 * 500)
    # the decision: unredeemed prize vouchers are breakage (the EXPIRED account), as receipt
    # vouchers; they never reach a wallet, and the budget does not get them back
    assert _points(uow, AccountKind.EXPIRED, "expired") == 27 * 500
    assert _points(uow, AccountKind.VOUCHER_FLOAT, "vouchers") == 0
    assert {who: _wallet(uow, who) for who in WALKERS} == wallets
    assert _points(uow, AccountKind.BUDGET, BUNGO) == -(GRANTED + 15_000)
    assert _budget_used(uow) == GRANTED + 15_000
    database.clock.advance(days=1)
    assert expire_vouchers(uow, as_of=date(2027, 2, 5)).vouchers == 0

    # month end: January pays the two shops what they took; February pays showa-1 the
    # voucher it took on Feb 3 and reports the lapsed prize vouchers as breakage
    database.clock.now = datetime(2027, 3, 1, 0, 0, tzinfo=UTC)
    for month in ("2027-01", "2027-02"):
        statements.close_month(uow, month=month)
        assert statements.check_month(uow, month=month).ok

    def payable(month: str, kind: str, party: str) -> int:
        found = statements.list_statements(
            uow, month=month, municipality=BUNGO, party_kind=kind, party_id=party
        )
        return sum(s.payable for s in found)

    assert payable("2027-01", "shop", "showa-1") == 500
    assert payable("2027-01", "shop", "showa-2") == 500
    assert payable("2027-02", "shop", "showa-1") == 500
    assert payable("2027-02", "breakage", "voucher") == 27 * 500
    report_check = ledger.check(uow)
    assert report_check.ok, report_check.problems


def test_prize_vouchers_for_a_set_of_shops_and_with_points(database: Database) -> None:
    uow = set_up(database)
    terms = PrizeTerms(2, 1000, 7, shop_ids=(OFF_STREET, "showa-2", "showa-2"))
    report = award(uow, top=1, points=300, vouchers=terms)

    [winner] = report.outcomes
    assert winner.status == "granted" and winner.transfer_id and len(winner.vouchers) == 2
    assert report.prize == PrizeTerms(2, 1000, 7, shop_ids=(OFF_STREET, "showa-2"))
    assert _wallet(uow, "WALK0001") == 6 * 500 + 300  # the points, and only the points
    assert _budget_used(uow) == GRANTED + 300 + 2000
    redeem(uow, shop_id=OFF_STREET, number=winner.vouchers[0], actor="t:1", key="s-1")
    with pytest.raises(MyKeyError) as elsewhere:
        redeem(uow, shop_id="showa-1", number=winner.vouchers[1], actor="t:2", key="s-2")
    assert elsewhere.value.code == "voucher_wrong_shop"
    assert elsewhere.value.details["valid_at"] == f"{OFF_STREET},showa-2"
    redeem(uow, shop_id="showa-2", number=winner.vouchers[1], actor="t:3", key="s-3")
    [page] = read_pdf(
        print_prize(uow, report.award_id, "WALK0001", viewer=Viewer(municipality=BUNGO)), dpi=72
    )
    assert "★宇佐駅前の土産店・昭和の町 食堂でご利用頂けます。" in page.text
    assert "使用済み" in page.text  # both were redeemed: the copies say so


def test_the_budget_limits_prize_vouchers(database: Database) -> None:
    uow = set_up(database, budget=GRANTED + 2 * 5000 + 499)
    report = award(uow)

    assert (report.granted, report.refused) == (2, 1)
    refusal = report.outcomes[2]
    assert (refusal.mykey_id, refusal.code, refusal.vouchers) == (
        "WALK0003",
        "budget_exceeded",
        (),
    )
    assert _points(uow, AccountKind.VOUCHER_FLOAT, "vouchers") == 10_000
    assert database.count("vouchers") == 20
    assert get_award(uow, report.award_id, municipality=BUNGO).winners[2].vouchers == 0


@pytest.mark.parametrize(
    ("points", "vouchers", "code"),
    [
        (0, None, "invalid_points"),
        (0, PrizeTerms(0, 500, 30, street_id=STREET), "invalid_count"),
        (0, PrizeTerms(101, 500, 30, street_id=STREET), "invalid_count"),
        (0, PrizeTerms(10, 0, 30, street_id=STREET), "invalid_points"),
        (0, PrizeTerms(10, 500, 0, street_id=STREET), "invalid_days"),
        (0, PrizeTerms(10, 500, 367, street_id=STREET), "invalid_days"),
        (0, PrizeTerms(10, 500, 30), "invalid_voucher_place"),
        (0, PrizeTerms(10, 500, 30, STREET, ("showa-1",)), "invalid_voucher_place"),
        (0, PrizeTerms(10, 500, 30, street_id="tsu-street"), "unknown_street"),
        (0, PrizeTerms(10, 500, 30, shop_ids=("showa-1", "nowhere")), "unknown_shop"),
        (-1, PRIZE, "invalid_points"),
    ],
)
def test_bad_prizes_are_refused_and_change_nothing(
    database: Database, points: int, vouchers: PrizeTerms | None, code: str
) -> None:
    uow = set_up(database)
    with pytest.raises(MyKeyError) as refused:
        award(uow, points=points, vouchers=vouchers)
    assert refused.value.code == code
    assert database.count("ranking_awards") == 0 and database.count("vouchers") == 0
    assert uow.run(lambda: uow.session.query(RankingAward).count()) == 0
    assert uow.run(lambda: uow.session.query(Voucher).count()) == 0
