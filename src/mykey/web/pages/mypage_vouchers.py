"""My Page's vouchers (`/mypage/vouchers`): the paper vouchers issued in the resident's name
(from their points at a counter, gift certificates, ranking prizes), grouped by issue, with
what is left of each and a PDF of each issue to print at home (each print counted, copies
after the first marked 再発行 / REPRINT). The use cases are the API's (points.vouchers,
points.voucher_print)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import Response

from mykey.errors import MyKeyError
from mykey.points import voucher_print
from mykey.points.vouchers import ISSUED, REDEEMED, VoucherView, vouchers_of
from mykey.web.pages.base import CurrentResident, PageDep, PageProblem
from mykey.web.security import is_head

router = APIRouter(prefix="/mypage", include_in_schema=False)


@dataclass(frozen=True)
class Issue:
    """The vouchers of one issue, as the resident sees them."""

    issue_id: str
    first: VoucherView
    count: int
    points: int
    usable: int  # not yet used and not lapsed
    used: int


def _issues(found: list[VoucherView]) -> list[Issue]:
    groups: dict[str, list[VoucherView]] = {}
    for v in found:
        groups.setdefault(v.issue_id, []).append(v)
    return [
        Issue(
            issue_id=issue_id,
            first=vs[0],
            count=len(vs),
            points=sum(v.face_value for v in vs),
            usable=sum(v.status == ISSUED for v in vs),
            used=sum(v.status == REDEEMED for v in vs),
        )
        for issue_id, vs in groups.items()
    ]


@router.get("/vouchers")
def vouchers(page: PageDep, mykey_id: CurrentResident) -> Response:
    return page.render("mypage/vouchers.html", issues=_issues(vouchers_of(page.uow, mykey_id)))


@router.get("/vouchers/{issue_id}.pdf")
def print_issue(page: PageDep, mykey_id: CurrentResident, issue_id: str) -> Response:
    """The PDF of one issue's vouchers, for the resident they were issued to only."""
    viewer = voucher_print.Viewer(mykey_id=mykey_id, counting=not is_head(page.request))
    try:
        content = voucher_print.print_batch(page.uow, issue_id, viewer=viewer)
    except MyKeyError:
        raise PageProblem(404, "error.not_found.title", "error.not_found.body") from None
    name = "".join(ch for ch in issue_id if ch.isascii() and (ch.isalnum() or ch == "-"))
    return Response(
        content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="vouchers-{name}.pdf"',
            "Cache-Control": "no-store",
        },
    )
