"""Bulk grants as a domain use case: accruing activities (R4.3) in bulk (SQLite and PostgreSQL)."""

from __future__ import annotations

from mykey import ledger
from mykey.demo import MUNICIPALITIES
from mykey.ledger import AccountKind
from mykey.municipalities.registry import upsert
from mykey.points.accruals import accruals_of, close_accrual_year
from mykey.points.bulk import JobParams, run_job, submit_job
from mykey.points.grants import grant_points
from mykey.points.program_setup import Rule, set_up_program
from tests.builders import residents_in_bulk
from tests.conftest import Database

TSU = "242012"


def test_a_month_of_care_volunteering_accrues_in_bulk_and_closes_with_single_grants(
    database: Database,
) -> None:
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    set_up_program(
        uow,
        municipality=TSU,
        point_name="津市ポイント",
        terms="",
        validity={},
        usable_at=["shop"],
        rules=[Rule("care", "介護支援ボランティア", 100, accrues=True)],
        accrual_default="payout",
    )
    residents_in_bulk(uow, ["CARE0001", "CARE0002", "CARE0003"])
    # one resident already accrued by a single grant at a desk this year
    grant_points(
        uow, municipality=TSU, mykey_id="CARE0001", actor="staff:tsu", key="desk-1",
        reason="施設での活動", activity="care",
    )  # fmt: skip
    data = "mykey_id,points,reason\nCARE0001,300,10月分\nCARE0002,500,10月分\n".encode()
    job = submit_job(
        uow, municipality=TSU, actor="staff:tsu", key="oct", data=data, params=JobParams()
    )
    # a grant list gives points per row: the job names no activity, so nothing accrues
    assert run_job(uow, job.id, data).status == "done"

    monthly = b"mykey_id\nCARE0001\nCARE0002\nCARE0003\n"
    job = submit_job(
        uow, municipality=TSU, actor="staff:tsu", key="oct-care", data=monthly,
        params=JobParams(activity="care"),
    )  # fmt: skip
    done = run_job(uow, job.id, monthly)
    assert (done.status, done.granted, done.points) == ("done", 3, 300)

    accrued = {
        who: sum(a.points for a in accruals_of(uow, who).accruing)
        for who in ("CARE0001", "CARE0002", "CARE0003")
    }
    assert accrued == {"CARE0001": 200, "CARE0002": 100, "CARE0003": 100}
    wallet = ledger.open_account(uow, ledger=TSU, kind=AccountKind.WALLET, owner="CARE0003")
    assert ledger.balance(uow, wallet.id).available == 0  # accrued points are not spendable

    database.clock.advance(days=200)  # past March 31, 2027
    report = close_accrual_year(uow, municipality=TSU, fiscal_year=2026)
    assert (report.payouts, report.payout_points) == (3, 400)
