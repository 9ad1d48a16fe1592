"""Demo data: the municipalities of the seeds, a few residents, shops and partners.

Every write goes through the real use cases with derived idempotency keys, so loading the demo
twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mykey import ledger
from mykey.db import UnitOfWork, tokyo_date
from mykey.identity.links import add_provider, add_zone, link_by_resident
from mykey.identity.proofs import VerifiedCard
from mykey.identity.residents import create_mykey_id
from mykey.identity.simulator import SimulatedCard
from mykey.identity.staff import add_staff, staff_exists
from mykey.ledger import AccountKind, LotTerms
from mykey.municipalities.registry import MunicipalityRecord, upsert
from mykey.points.partners import add_agreement, get_partner, set_partner
from mykey.points.picks import Pick, picks_of, set_picks
from mykey.points.program_setup import Rule, set_up_program
from mykey.points.programs import expires_on
from mykey.points.shops import set_shop, set_street
from mykey.settlement.payouts import set_paying_account, set_payout_account

ACTOR = "system:demo"

# The seeds' municipalities (codes with their JIS X 0402 check digits), and the Omuta zone of
# mutual library use (R2.4). Embedded so the demo needs no outside file at run time.
MUNICIPALITIES = (
    MunicipalityRecord("131164", "東京都", "豊島区", "としまく"),
    MunicipalityRecord("442097", "大分県", "豊後高田市", "ぶんごたかだし"),
    MunicipalityRecord("452025", "宮崎県", "都城市", "みやこのじょうし"),
    MunicipalityRecord("242012", "三重県", "津市", "つし"),
    MunicipalityRecord("292044", "奈良県", "天理市", "てんりし"),
    MunicipalityRecord("402028", "福岡県", "大牟田市", "おおむたし"),
    MunicipalityRecord("434248", "熊本県", "小国町", "おぐにまち"),
    MunicipalityRecord("102016", "群馬県", "前橋市", "まえばしし"),
    MunicipalityRecord("402079", "福岡県", "柳川市", "やながわし"),
    MunicipalityRecord("402290", "福岡県", "みやま市", "みやまし"),
    MunicipalityRecord("433675", "熊本県", "南関町", "なんかんまち"),
    MunicipalityRecord("432041", "熊本県", "荒尾市", "あらおし"),
    MunicipalityRecord("433683", "熊本県", "長洲町", "ながすまち"),
)

PROGRAMS = {
    "131164": "豊島区ポイント",
    "442097": "豊後高田市ポイント",
    "452025": "都城市ポイント",
    "242012": "津市ポイント",
    "292044": "天理市ポイント",
    "402028": "大牟田市ポイント",
    "434248": "小国町北里柴三郎ポイント",
    "102016": "前橋市ポイント",
}

RESIDENTS = ("MY123456", "A01B02C3", "TSU65000", "OGUNI001")
# Shops and facilities (R6.4): id, name, kind, shopping street. Each takes its town's points.
SHOPS = {
    "131164": (
        ("toshima-museum", "豊島区立郷土資料館", "museum", None),
        ("otsuka-shoten", "大塚商店街 さくら書店", "shop", "otsuka"),
    ),
    "442097": (
        ("showa-no-machi-1", "昭和の町 駄菓子屋", "shop", "showa-no-machi"),
        ("showa-no-machi-2", "昭和の町 食堂", "shop", "showa-no-machi"),
    ),
    "292044": (
        ("tenri-honten", "天理本通り 書店", "shop", "tenri-hondori"),
        ("tenri-shoko-kai", "天理本通り 和菓子店", "shop", "tenri-hondori"),
    ),
    "434248": (
        ("kitasato-museum", "北里柴三郎記念館", "museum", None),
        ("oguni-onsen", "小国温泉 共同浴場", "hot_spring", None),
    ),
    "102016": (
        ("arts-maebashi", "アーツ前橋", "museum", None),
        ("q-town-1", "Qの町 文具店", "shop", "q-town"),
    ),
}
STREETS = {
    "otsuka": ("大塚商店街", "131164"),
    "showa-no-machi": ("豊後高田 昭和の町", "442097"),
    "tenri-hondori": ("天理本通り商店街", "292044"),
    "q-town": ("前橋 Qの町", "102016"),
}
# Online services (R6.6): id, name, municipality.
ONLINE_SHOPS = (("tenri-furusato", "天理ふるさと便", "292044"),)
USABLE_AT = ["shop", "museum", "hot_spring", "online"]
PARTNERS = ("jal", "docomo", "chubu-electric", "saison")

# The demo partners' terms (R5.2, R5.4): name, methods, units -> points, minimum, step, daily.
PARTNER_TERMS = {
    "jal": ("JAL マイレージバンク", ["id_linkage"], 10000, 10000, 10000, 10000, 50000),
    "docomo": ("NTTドコモ dポイント", ["id_linkage"], 1000, 1000, 1000, 1000, 30000),
    "chubu-electric": ("中部電力 カテエネポイント", ["id_linkage"], 500, 500, 500, 500, 20000),
    "saison": ("クレディセゾン 永久不滅ポイント", ["id_linkage"], 200, 1000, 200, 200, 10000),
}


# Administrative points until the end of the fiscal year, converted points for 6 months.
VALIDITY: dict[str, int | None] = {"budget": None, "partner": 6}

# Grant rules of the seeds (R4.1): Toshima and Bungotakada.
RULES = {
    "131164": (
        Rule("volunteer", "ボランティア", 200),
        Rule("event", "イベント参加", 100, "event"),
        Rule("health_walk", "健康ウォークラリー", 500, "year"),
    ),
    "442097": (
        Rule("cleanup", "清掃活動", 100, "event"),
        Rule("exercise", "健康体操", 20, "day"),
        Rule("course", "手話・認知症サポーター講座", 500),
        Rule("checkup", "特定健診", 500, "year"),
    ),
}

# The Omuta regional libraries (R2.4): one card at every member library.
ZONE = ("omuta", "有明圏域図書館")
PROVIDERS = (
    ("A1", "大牟田市立図書館", "library", "402028"),
    ("B1", "柳川市立図書館", "library", "402079"),
    ("C1", "みやま市立図書館", "library", "402290"),
    ("D1", "荒尾市立図書館", "library", "432041"),
    ("G1", "豊島区立総合体育場", "gym", "131164"),
)


@dataclass(frozen=True)
class DemoReport:
    municipalities: int
    ledgers: int
    transfers_made: int
    transfers_already_there: int


DEMO_PASSWORD = "mykey-demo-2026"  # noqa: S105 -- printed for the demo; never in production


def register_residents(uow: UnitOfWork, cards: Mapping[str, SimulatedCard]) -> None:
    """Give each demo card a MyKey ID of the resident's name, and link MY123456 to two
    libraries of the Omuta zone (A1 → 789145, B1 → 234209, as in the seed's figure)."""
    for resident, card in cards.items():
        verified = VerifiedCard(card.card_key, card.certificate.not_valid_after_utc)
        create_mykey_id(uow, card=verified, password=DEMO_PASSWORD, mykey_id=resident)
    if "MY123456" in cards:
        link_by_resident(uow, mykey_id="MY123456", provider_id="A1", user_number="789145")
        link_by_resident(uow, mykey_id="MY123456", provider_id="B1", user_number="234209")


def register_partners(uow: UnitOfWork) -> None:
    """The demo partners, each with terms from today unless it already has some."""
    today = tokyo_date(uow.now())
    for partner, (name, methods, units, points, minimum, step, daily) in PARTNER_TERMS.items():
        view = set_partner(uow, partner=partner, name=name, methods=methods)
        if not get_partner(uow, view.id).agreements:
            add_agreement(
                uow,
                partner=partner,
                effective_from=today,
                rate_units=units,
                rate_points=points,
                minimum=minimum,
                step=step,
                daily_limit=daily,
                actor="operator:demo",
            )


def load(uow: UnitOfWork) -> DemoReport:
    upsert(uow, MUNICIPALITIES)
    register_partners(uow)
    add_zone(uow, zone_id=ZONE[0], name=ZONE[1])
    for provider_id, name, kind, code in PROVIDERS:
        add_provider(
            uow,
            provider_id=provider_id,
            name=name,
            kind=kind,
            municipality=code,
            zone_id=ZONE[0] if kind == "library" else None,
        )
    today = tokyo_date(uow.now())
    fy_end = expires_on(VALIDITY, "budget", today)
    converted_end = expires_on(VALIDITY, "partner", today)
    made = already = 0

    def count(receipt: ledger.Receipt) -> None:
        nonlocal made, already
        if receipt.replayed:
            already += 1
        else:
            made += 1

    for code, name in PROGRAMS.items():
        set_up_program(
            uow,
            municipality=code,
            point_name=name,
            terms="1ポイント＝1円。行政ポイントは年度末（3月31日）まで有効です。",
            validity=VALIDITY,
            usable_at=USABLE_AT,
            rules=RULES.get(code, ()),
        )
        budget = ledger.open_account(uow, ledger=code, kind=AccountKind.BUDGET, owner=code)
        shops = [
            ledger.open_account(uow, ledger=code, kind=AccountKind.SHOP, owner=shop[0])
            for shop in SHOPS.get(code, ())
        ]
        for n, resident in enumerate(RESIDENTS):
            wallet = ledger.open_account(uow, ledger=code, kind=AccountKind.WALLET, owner=resident)
            count(
                ledger.transfer(
                    uow,
                    debit=budget.id,
                    credit=wallet.id,
                    amount=500 + 100 * n,
                    kind="grant",
                    actor=ACTOR,
                    key=f"grant-{code}-{resident}",
                    lot=LotTerms("budget", fy_end),
                    metadata={"activity": "volunteer"},
                )
            )
            partner_name = PARTNERS[n % len(PARTNERS)]
            partner = ledger.open_account(
                uow, ledger=code, kind=AccountKind.PARTNER, owner=partner_name
            )
            count(
                ledger.transfer(
                    uow,
                    debit=partner.id,
                    credit=wallet.id,
                    amount=1000,
                    kind="convert",
                    actor=ACTOR,
                    key=f"convert-{code}-{resident}",
                    lot=LotTerms("partner", converted_end),
                    metadata={"partner": partner_name},
                )
            )
            if shops:
                count(
                    ledger.transfer(
                        uow,
                        debit=wallet.id,
                        credit=shops[n % len(shops)].id,
                        amount=300,
                        kind="spend",
                        actor=ACTOR,
                        key=f"spend-{code}-{resident}",
                    )
                )
    register_shops(uow)
    return DemoReport(len(MUNICIPALITIES), len(PROGRAMS), made, already)


def register_shops(uow: UnitOfWork) -> None:
    """The demo's shopping streets, shops, facilities and online services (idempotent)."""
    for street_id, (name, code) in STREETS.items():
        set_street(uow, street_id=street_id, name=name, municipality=code)
    for code, shops in SHOPS.items():
        for shop_id, name, kind, street in shops:
            set_shop(
                uow,
                shop_id=shop_id,
                name=name,
                municipality=code,
                kind=kind,
                accepts=[code],
                street_id=street,
            )
    for shop_id, name, code in ONLINE_SHOPS:
        set_shop(uow, shop_id=shop_id, name=name, municipality=code, kind="online", accepts=[code])
    register_bank_accounts(uow)


DEMO_BANK = "9999"  # no real bank has this code: the demo's files can never be sent


def register_bank_accounts(uow: UnitOfWork) -> None:
    """Demo bank accounts (a bank code no bank has): each town with shops pays from one, each
    shop is paid into one, so `mykey settle zengin` works on the demo (idempotent)."""
    shop_ids = [s[0] for shops in SHOPS.values() for s in shops] + [s[0] for s in ONLINE_SHOPS]
    for n, shop_id in enumerate(shop_ids, start=1):
        set_payout_account(
            uow,
            shop_id=shop_id,
            bank_code=DEMO_BANK,
            branch_code="001",
            deposit_type=1,
            account_number=f"{n:07d}",
            holder_name=f"ﾃﾞﾓ {shop_id.upper()}",
            actor=ACTOR,
            bank_name="ﾃﾞﾓ",
            branch_name="ﾎﾝﾃﾝ",
        )
    for code in SHOPS:
        set_paying_account(
            uow,
            municipality=code,
            requester_code=f"9999{code}",
            requester_name=f"ﾃﾞﾓ ｼﾞﾁﾀｲ {code}",
            bank_code=DEMO_BANK,
            branch_code="001",
            deposit_type=1,
            account_number=f"9{code}",
            actor=ACTOR,
            bank_name="ﾃﾞﾓ",
            branch_name="ﾎﾝﾃﾝ",
        )


# Staff accounts of the web pages (R9, issue #8): one per role, printed with this password.
DEMO_STAFF_PASSWORD = "mykey-staff-2026"  # noqa: S105 -- printed for the demo; never in production
DEMO_STAFF: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("council", "operator", {}),
    ("toshima", "municipality_staff", {"municipality": "131164"}),
    ("tenri", "municipality_staff", {"municipality": "292044"}),
    ("jal", "partner", {"partner_id": "jal"}),
    ("arts-maebashi", "shop_staff", {"shop_id": "arts-maebashi"}),
    ("omuta-library", "shop_staff", {"shop_id": "A1"}),  # the library's counter terminal
)
DEMO_PICKS = {
    "292044": (
        Pick("柿の葉寿司 10 個入り", "天理ふるさと便", 1800),
        Pick("奈良漬 詰め合わせ", "天理ふるさと便", 2500),
    ),
    "434248": (Pick("小国杉のコースター 5 枚組", "小国町ふるさとショップ", 1200),),
}


def register_staff(uow: UnitOfWork) -> list[tuple[str, str]]:
    """The demo staff accounts and the demo's online-shop picks; returns the accounts made
    now (none when they are there already)."""
    made = []
    for username, role, binding in DEMO_STAFF:
        if not staff_exists(uow, username):
            add_staff(uow, username=username, password=DEMO_STAFF_PASSWORD, role=role, **binding)
            made.append((username, role))
    for code, picks in DEMO_PICKS.items():
        if not picks_of(uow, code):
            set_picks(uow, code=code, picks=picks, actor=ACTOR)
    return made
