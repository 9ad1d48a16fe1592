"""Point Navi (自治体ポイントナビ, R9): the public portal. Anyone may read it; no forms. Its
data is read from the read replica when there is one (`mykey.web.replicas`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from mykey.municipalities.prefectures import BY_CODE, PREFECTURES
from mykey.points import directory
from mykey.web.pages.base import PageDep, PageProblem
from mykey.web.replicas import ReadUow

router = APIRouter(prefix="/navi", include_in_schema=False)

# The guides of R9.4, one per audience: slug -> message key of its title.
GUIDES = (
    "residents",
    "shop-staff",
    "library-staff",
    "voucher-staff",
    "administrative-point-staff",
    "municipality-staff",
)
CONTENT = ("terms", "faq", *(f"guide-{slug}" for slug in GUIDES))
TILE = 64
STEP = 68


@router.get("")
def top(page: PageDep, reads: ReadUow, signed_out: int = 0) -> Response:
    return page.render(
        "navi/top.html",
        recommended=directory.recommended(reads),
        programs=directory.programs(reads),
        signed_out=bool(signed_out),
    )


@router.get("/map")
def japan_map(page: PageDep, reads: ReadUow) -> Response:
    counts = directory.programs_per_prefecture(reads)
    tiles = [
        {
            "pref": p,
            "count": counts.get(p.code, 0),
            "x": p.column * STEP,
            "y": p.row * STEP,
        }
        for p in PREFECTURES
    ]
    return page.render(
        "navi/map.html",
        tiles=tiles,
        tile_size=TILE,
        size=13 * STEP,
        with_points=[t for t in tiles if t["count"]],
    )


@router.get("/prefectures/{code}")
def prefecture(page: PageDep, reads: ReadUow, code: str) -> Response:
    pref = BY_CODE.get(code)
    if pref is None:
        raise PageProblem(404, "error.not_found.title", "error.not_found.body")
    return page.render(
        "navi/prefecture.html",
        pref=pref,
        programs=directory.programs(reads, prefecture=code),
        libraries=directory.libraries(reads, prefecture=code),
    )


@router.get("/picks")
def picks(page: PageDep, reads: ReadUow) -> Response:
    return page.render(
        "navi/picks.html", programs=[p for p in directory.programs(reads) if p.picks]
    )


@router.get("/council")
def council(page: PageDep, reads: ReadUow) -> Response:
    members = directory.members(reads)
    by_prefecture: dict[str, list[directory.Member]] = {}
    for member in members:
        by_prefecture.setdefault(member.prefecture_code, []).append(member)
    return page.render(
        "navi/council.html",
        total=len(members),
        groups=[(BY_CODE[code], towns) for code, towns in sorted(by_prefecture.items())],
    )


@router.get("/terms")
def terms(page: PageDep) -> Response:
    return page.render("navi/content.html", name="terms", title_key="navi.terms.title", crumbs=[])


@router.get("/faq")
def faq(page: PageDep) -> Response:
    return page.render("navi/content.html", name="faq", title_key="navi.faq.title", crumbs=[])


@router.get("/guides")
def guides(page: PageDep) -> Response:
    return page.render("navi/guides.html", guides=GUIDES)


@router.get("/guides/{slug}")
def guide(page: PageDep, slug: str) -> Response:
    if slug not in GUIDES:
        raise PageProblem(404, "error.not_found.title", "error.not_found.body")
    return page.render(
        "navi/content.html",
        name=f"guide-{slug}",
        title_key=f"guide.{slug}",
        crumbs=[("/navi/guides", page.t("navi.guides.title"))],
    )
