"""A municipality's staff set up its point program (R3.1): name, terms, validity, places."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, select

from mykey import ledger
from mykey.db import UnitOfWork
from mykey.errors import MAX_POINTS, MONTHS, PERMILLE, POINTS, invalid, not_found
from mykey.ledger import AccountKind
from mykey.municipalities.codes import parse_code
from mykey.municipalities.models import Municipality
from mykey.points import shop_cache
from mykey.points.models import GrantRule, PointProgram
from mykey.points.programs import FUNDING_SOURCES, PLACE_KINDS

LIMITS = ("none", "event", "day", "year")


@dataclass(frozen=True)
class Rule:
    activity: str
    name: str
    points: int
    limit: str = "none"  # once per person per event, day or fiscal year
    accrues: bool = False  # accumulating (R4.3): paid out or donated at fiscal year end


@dataclass(frozen=True)
class Program:
    code: str
    municipality: str  # e.g. 熊本県小国町
    point_name: str
    terms: str
    validity: dict[str, int | None]
    usable_at: tuple[str, ...]
    premium_permille: int
    rules: tuple[Rule, ...] = field(default_factory=tuple)
    annual_budget: int | None = None
    premium_budget: int | None = None  # premium points per fiscal year (None: no cap)
    accrual_default: str = "donation"  # what accrued points become unless the resident chooses


ACCRUAL_CHOICES = ("payout", "donation")


MAX_RULE_POINTS = 1_000_000  # the most points one activity of a rule grants


def _check(
    point_name: str,
    validity: Mapping[str, int | None],
    usable_at: Sequence[str],
    premium_permille: int,
    rules: Sequence[Rule],
) -> None:
    if not point_name.strip() or len(point_name) > 100:
        raise invalid(
            "invalid_point_name", "A program needs a point name.", "ポイント名が必要です。"
        )
    for funding, months in validity.items():
        if months is not None:
            MONTHS.check(months, 1, 120, f"validity.{funding}")
        if funding not in FUNDING_SOURCES:
            raise invalid(
                "invalid_validity",
                f"Validity is given per funding source ({', '.join(FUNDING_SOURCES)}) in months"
                " from 1 to 120, or null for the end of the fiscal year.",
                "有効期限は財源ごとに 1〜120 か月、または年度末（null）で指定してください。",
            )
    unknown = [kind for kind in usable_at if kind not in PLACE_KINDS]
    if unknown or not usable_at:
        raise invalid(
            "invalid_places",
            f"Places are some of: {', '.join(PLACE_KINDS)}.",
            "利用できる場所の種別が正しくありません。",
        )
    PERMILLE.check(premium_permille, 0, 1000, "premium_permille")
    seen: set[str] = set()
    for rule in rules:
        POINTS.check(rule.points, 1, MAX_RULE_POINTS, f"rules.{rule.activity}.points")
        if (
            not rule.activity.isascii()
            or not rule.activity.replace("_", "").isalnum()
            or not 1 <= len(rule.activity) <= 32
            or rule.activity in seen
            or rule.limit not in LIMITS
        ):
            raise invalid(
                "invalid_rule",
                f"Rule {rule.activity!r}: a unique short name and a limit of {', '.join(LIMITS)}.",
                f"付与ルール {rule.activity!r} が正しくありません。",
            )
        seen.add(rule.activity)


def set_up_program(
    uow: UnitOfWork,
    *,
    municipality: str,
    point_name: str,
    terms: str,
    validity: Mapping[str, int | None],
    usable_at: Sequence[str],
    premium_permille: int = 0,
    rules: Sequence[Rule] = (),
    annual_budget: int | None = None,
    premium_budget: int | None = None,
    accrual_default: str = "donation",
) -> Program:
    """Create or change a municipality's program; opens its ledger and budget account."""
    code = parse_code(municipality)
    full_validity = {"budget": None, "partner": 6, "premium": 6, **dict(validity)}
    _check(point_name, full_validity, usable_at, premium_permille, rules)
    if annual_budget is not None:
        POINTS.check(annual_budget, 1, MAX_POINTS, "annual_budget")
    if premium_budget is not None:
        POINTS.check(premium_budget, 0, MAX_POINTS, "premium_budget")
    if accrual_default not in ACCRUAL_CHOICES:
        raise invalid(
            "invalid_accrual_default",
            "Accrued points default to payout or donation.",
            "積立ポイントの既定の扱いは payout（現金払い）か donation（寄付）です。",
        )

    def body() -> Program:
        s = uow.session
        if s.get(Municipality, code) is None:
            raise not_found(
                "unknown_municipality",
                f"No local government with code {code} is registered.",
                f"団体コード {code} の自治体は登録されていません。",
            )
        ledger.open_ledger(uow, code=code, name=point_name)
        ledger.open_account(uow, ledger=code, kind=AccountKind.BUDGET, owner=code)
        now = uow.now()
        row = s.get(PointProgram, code)
        if row is None:
            row = PointProgram(code=code, created_at=now)
            s.add(row)
        row.point_name = point_name.strip()
        row.terms = terms
        row.validity = json.dumps(full_validity, sort_keys=True)
        row.usable_at = json.dumps(list(usable_at))
        row.premium_permille = premium_permille
        row.annual_budget = annual_budget
        row.premium_budget = premium_budget
        row.accrual_default = accrual_default
        row.updated_at = now
        s.flush()
        s.execute(delete(GrantRule).where(GrantRule.code == code))
        for rule in rules:
            s.add(
                GrantRule(
                    code=code,
                    activity=rule.activity,
                    name=rule.name,
                    points=rule.points,
                    limit=rule.limit,
                    accrues=rule.accrues,
                )
            )
        s.flush()
        return program_of(uow, code)

    program = uow.run(body)
    shop_cache.forget(uow.engine)  # the points' name, as counters show it: every shop's entry
    return program


def program_of(uow: UnitOfWork, code: str) -> Program:
    s = uow.session
    row = s.get(PointProgram, code)
    if row is None:
        raise not_found(
            "no_program",
            f"Municipality {code} has no point program.",
            f"団体コード {code} の自治体にはポイント制度がありません。",
        )
    town = s.get(Municipality, code)
    rules = s.scalars(select(GrantRule).where(GrantRule.code == code).order_by(GrantRule.activity))
    return Program(
        code=code,
        municipality=f"{town.prefecture}{town.name}" if town else code,
        point_name=row.point_name,
        terms=row.terms,
        validity=json.loads(row.validity),
        usable_at=tuple(json.loads(row.usable_at)),
        premium_permille=row.premium_permille,
        rules=tuple(Rule(r.activity, r.name, r.points, r.limit, r.accrues) for r in rules),
        annual_budget=row.annual_budget,
        premium_budget=row.premium_budget,
        accrual_default=row.accrual_default,
    )


def get_program(uow: UnitOfWork, municipality: str) -> Program:
    code = parse_code(municipality)
    return uow.read(lambda: program_of(uow, code))


def list_programs(uow: UnitOfWork) -> list[Program]:
    def body() -> list[Program]:
        codes = uow.session.scalars(select(PointProgram.code).order_by(PointProgram.code)).all()
        return [program_of(uow, code) for code in codes]

    return uow.read(body)
