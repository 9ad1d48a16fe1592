"""A municipality's point program and its grant rules."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mykey.db import Base, UTCDateTime


class PointProgram(Base):
    """One per municipality; its code is also its ledger's code."""

    __tablename__ = "point_programs"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    point_name: Mapped[str] = mapped_column(String(100))
    terms: Mapped[str] = mapped_column(Text)
    validity: Mapped[str] = mapped_column(Text)  # JSON: funding source -> months (null: FY end)
    usable_at: Mapped[str] = mapped_column(Text)  # JSON list of kinds of place
    premium_permille: Mapped[int] = mapped_column(Integer, default=0)
    annual_budget: Mapped[int | None] = mapped_column(BigInteger)  # points per fiscal year
    premium_budget: Mapped[int | None] = mapped_column(BigInteger)  # premium points per FY
    # what a resident's accrued points become at year end unless they choose: payout | donation
    accrual_default: Mapped[str] = mapped_column(
        String(8), default="donation", server_default="donation"
    )
    # the municipality's operating share of online sales (R7.4), in permille of captured points
    online_fee_permille: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GrantRule(Base):
    """A named activity and the points it earns (volunteer 200, health-walk rally 500 …)."""

    __tablename__ = "grant_rules"

    code: Mapped[str] = mapped_column(
        String(6), ForeignKey("point_programs.code"), primary_key=True
    )
    activity: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    points: Mapped[int] = mapped_column(Integer)
    limit: Mapped[str] = mapped_column(  # none | event | day | year: once per person per …
        String(8), default="none", server_default="none"
    )
    # accumulating (R4.3): its points accrue over the fiscal year, then are paid out or donated
    accrues: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class GrantLimitUse(Base):
    """One row per person per limited period: the primary key makes a second grant fail."""

    __tablename__ = "grant_limit_uses"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    activity: Mapped[str] = mapped_column(String(32), primary_key=True)
    mykey_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    period: Mapped[str] = mapped_column(String(80), primary_key=True)  # event:…, day:…, fy:…
    transfer_id: Mapped[str] = mapped_column(String(36))


class BudgetUse(Base):
    """Points granted from a program's budget in one fiscal year, against its cap."""

    __tablename__ = "program_budget_uses"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    granted: Mapped[int] = mapped_column(BigInteger, default=0)


class GrantJob(Base):
    """A bulk grant (a CSV of grants, or an eligibility list): granted all at once, or not at
    all with a report of every refused row. One per municipality and idempotency key, whichever
    of its staff sends it (`actor` is the first sender)."""

    __tablename__ = "grant_jobs"
    __table_args__ = (UniqueConstraint("actor", "client_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code: Mapped[str] = mapped_column(String(6), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    client_key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    params: Mapped[str] = mapped_column(Text)  # JSON: activity, points, reason, event
    status: Mapped[str] = mapped_column(String(8))  # queued running done refused failed
    rows: Mapped[int] = mapped_column(Integer, default=0)
    granted: Mapped[int] = mapped_column(Integer, default=0)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)  # JSON problem of a refused whole file
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class GrantJobFile(Base):
    """The file a bulk grant job runs on, kept with the job: the worker that runs it is not
    the process that received it."""

    __tablename__ = "grant_job_files"

    job_id: Mapped[str] = mapped_column(String(36), ForeignKey("grant_jobs.id"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class GrantJobRefusal(Base):
    """One refused row of a bulk grant: its line in the file and why."""

    __tablename__ = "grant_job_refusals"

    job_id: Mapped[str] = mapped_column(String(36), ForeignKey("grant_jobs.id"), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    mykey_id: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(String(300))
    message_ja: Mapped[str] = mapped_column(String(300))


# --- partner conversions (R5) and reserved points (R3.3) ------------------------------------


class Partner(Base):
    """A partner company (地域経済応援ポイント協力企業); its id is also its service name."""

    __tablename__ = "partners"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # e.g. jal, chubu-electric
    name: Mapped[str] = mapped_column(String(200))
    methods: Mapped[str] = mapped_column(Text)  # JSON list: id_linkage, coupon_paper, …
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PartnerAgreement(Base):
    """Terms agreed by the council with a partner, in force from a Tokyo date (append-only)."""

    __tablename__ = "partner_agreements"

    partner: Mapped[str] = mapped_column(String(32), ForeignKey("partners.id"), primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date, primary_key=True)
    rate_units: Mapped[int] = mapped_column(BigInteger)  # this many partner units …
    rate_points: Mapped[int] = mapped_column(BigInteger)  # … make this many points
    minimum: Mapped[int] = mapped_column(BigInteger)  # units
    step: Mapped[int] = mapped_column(BigInteger)  # units
    daily_limit: Mapped[int | None] = mapped_column(BigInteger)  # units per resident per day
    partner_daily_limit: Mapped[int | None] = mapped_column(BigInteger)  # units per day
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PartnerKey(Base):
    """A partner API key's binding and its HMAC signing secret, encrypted (AES-GCM)."""

    __tablename__ = "partner_keys"

    key_id: Mapped[str] = mapped_column(String(16), ForeignKey("api_keys.id"), primary_key=True)
    partner: Mapped[str] = mapped_column(String(32), ForeignKey("partners.id"))
    secret_box: Mapped[bytes] = mapped_column(LargeBinary)  # nonce (12 bytes) + ciphertext
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PartnerSignature(Base):
    """Signatures already seen, so that a captured request cannot be replayed."""

    __tablename__ = "partner_signatures"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    signature: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Conversion(Base):
    """One conversion of partner units into points (append-only): statements and history."""

    __tablename__ = "conversions"
    __table_args__ = (
        UniqueConstraint("actor", "client_key"),
        Index("ix_conversions_partner_created_at", "partner", "created_at"),
        Index("ix_conversions_mykey_id", "mykey_id"),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    actor: Mapped[str] = mapped_column(String(128))
    client_key: Mapped[str] = mapped_column(String(128))
    partner: Mapped[str] = mapped_column(String(32), ForeignKey("partners.id"))
    method: Mapped[str] = mapped_column(String(16))
    mykey_id: Mapped[str] = mapped_column(String(8))
    service_id: Mapped[str | None] = mapped_column(String(128))
    units: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    premium: Mapped[int] = mapped_column(BigInteger)
    municipality: Mapped[str | None] = mapped_column(String(6))  # NULL: reserved
    agreement_from: Mapped[date] = mapped_column(Date)
    transfer_id: Mapped[UUID] = mapped_column(Uuid)
    premium_transfer_id: Mapped[UUID | None] = mapped_column(Uuid)
    reference: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConversionDailyUse(Base):
    """Units converted per partner per Tokyo day, per resident (or `*` for the partner's
    total), counted with a guarded update against the agreement's limit."""

    __tablename__ = "conversion_daily_uses"

    partner: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)  # a MyKey ID, or *
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    units: Mapped[int] = mapped_column(BigInteger, default=0)


class PremiumUse(Base):
    """Premium points given by a program in one fiscal year, against its premium budget."""

    __tablename__ = "premium_uses"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    granted: Mapped[int] = mapped_column(BigInteger, default=0)


class ResidentPointSettings(Base):
    """A resident's default municipality for reserved points; its row also serialises the
    assignments of one resident's reserved points."""

    __tablename__ = "resident_point_settings"

    mykey_id: Mapped[str] = mapped_column(
        String(8), ForeignKey("residents.mykey_id"), primary_key=True
    )
    default_municipality: Mapped[str | None] = mapped_column(String(6))
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReservedAssignment(Base):
    """One part (one partner's points) of an assignment of reserved points (append-only)."""

    __tablename__ = "reserved_assignments"
    __table_args__ = (
        UniqueConstraint("actor", "client_key", "seq"),
        Index("ix_reserved_assignments_mykey_id", "mykey_id"),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    assignment_id: Mapped[UUID] = mapped_column(Uuid)
    actor: Mapped[str] = mapped_column(String(128))
    client_key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str | None] = mapped_column(String(64))  # NULL: assigned before 0023
    seq: Mapped[int] = mapped_column(Integer)
    mykey_id: Mapped[str] = mapped_column(String(8))
    partner: Mapped[str] = mapped_column(String(32))
    municipality: Mapped[str] = mapped_column(String(6))
    points: Mapped[int] = mapped_column(BigInteger)
    premium: Mapped[int] = mapped_column(BigInteger)  # the whole assignment's, on part 0
    out_transfer_id: Mapped[UUID] = mapped_column(Uuid)
    in_transfer_id: Mapped[UUID] = mapped_column(Uuid)
    premium_transfer_id: Mapped[UUID | None] = mapped_column(Uuid)
    reason: Mapped[str] = mapped_column(String(16))  # resident | sweep
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CorrectionCase(Base):
    """A correction of one transfer (points credited to the wrong resident, or a grant to
    undo): proposed by one staff member, approved (and executed) by another.

    At most one case per transfer is proposed or approved at a time (a partial unique index);
    a rejected or withdrawn case leaves room for a new one."""

    __tablename__ = "correction_cases"
    __table_args__ = (
        UniqueConstraint("proposed_by", "proposal_key"),
        Index(
            "uq_correction_cases_active_transfer",
            "transfer_id",
            unique=True,
            sqlite_where=text("status IN ('proposed', 'approved')"),
            postgresql_where=text("status IN ('proposed', 'approved')"),
        ),
        Index("ix_correction_cases_municipality", "municipality", "proposed_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    municipality: Mapped[str] = mapped_column(String(6))
    kind: Mapped[str] = mapped_column(String(8))  # move | reverse
    transfer_id: Mapped[str] = mapped_column(String(36))
    points: Mapped[int] = mapped_column(BigInteger)  # the original transfer's amount
    wrong_mykey_id: Mapped[str] = mapped_column(String(8))
    right_mykey_id: Mapped[str | None] = mapped_column(String(8))
    reason_code: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))  # proposed|approved|rejected|withdrawn
    proposed_by: Mapped[str] = mapped_column(String(128))
    proposal_key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str | None] = mapped_column(Text)
    moved: Mapped[int] = mapped_column(BigInteger, default=0)  # taken from the wrong wallet
    funded: Mapped[int] = mapped_column(BigInteger, default=0)  # paid from the budget (move)
    claimed: Mapped[int] = mapped_column(BigInteger, default=0)  # spent: owed by the holder
    budget_returned: Mapped[int] = mapped_column(BigInteger, default=0)


class CorrectionLeg(Base):
    """One ledger transfer an approved case made (move, fund or reverse)."""

    __tablename__ = "correction_legs"

    case_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("correction_cases.id"), primary_key=True
    )
    leg: Mapped[str] = mapped_column(String(16), primary_key=True)
    transfer_id: Mapped[str] = mapped_column(String(36))
    points: Mapped[int] = mapped_column(BigInteger)


class CorrectionClaim(Base):
    """Points the wrong holder had already spent when the case was approved: owed back, not
    forced out of the wallet (no balance goes below zero)."""

    __tablename__ = "correction_claims"

    case_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("correction_cases.id"), primary_key=True
    )
    municipality: Mapped[str] = mapped_column(String(6))
    mykey_id: Mapped[str] = mapped_column(String(8))
    points: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10))  # open
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Accrual(Base):
    """A resident's accrual account for one program and fiscal year (R4.3)."""

    __tablename__ = "accruals"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    mykey_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccrualChoice(Base):
    """What a resident wants done with their accrued points at year end."""

    __tablename__ = "accrual_choices"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    mykey_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    choice: Mapped[str] = mapped_column(String(8))  # payout | donation
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccrualClosing(Base):
    """What the year-end close did with one resident's accrued points: a payout (yen owed,
    pending until staff record the bank transfer) or a donation."""

    __tablename__ = "accrual_closings"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    mykey_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(8))  # payout | donation
    points: Mapped[int] = mapped_column(BigInteger)  # 1 point = 1 yen
    status: Mapped[str] = mapped_column(String(8))  # pending | paid (payout); donated
    transfer_id: Mapped[str] = mapped_column(String(36))
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_by: Mapped[str | None] = mapped_column(String(128))
    paid_reference: Mapped[str | None] = mapped_column(String(100))
    paid_transfer_id: Mapped[str | None] = mapped_column(String(36))


class RankingAward(Base):
    """A ranking that staff turned into grants, kept as it was then (a voucher issue can use it
    later); the municipality's key (whoever sent it) makes running the award again grant once,
    and one ranking (activity and period) is awarded once."""

    __tablename__ = "ranking_awards"

    # UUIDv5 of (municipality, activity, period); of (actor, key) for awards made before 0023
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code: Mapped[str] = mapped_column(String(6))
    actor: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    activity: Mapped[str | None] = mapped_column(String(32))
    start_on: Mapped[date] = mapped_column(Date)
    end_on: Mapped[date] = mapped_column(Date)
    top: Mapped[int] = mapped_column(Integer)
    minimum: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RankingAwardEntry(Base):
    """One ranked resident of an award, as ranked when the award was made."""

    __tablename__ = "ranking_award_entries"

    award_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ranking_awards.id"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    mykey_id: Mapped[str] = mapped_column(String(8))
    earned: Mapped[int] = mapped_column(BigInteger)
    reached_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RankingAwardPrize(Base):
    """An award's prize vouchers (R4.5): `count` vouchers of `face_value` points for each
    ranked resident, valid `valid_days` days counting the day of issue, at every shop of
    `street_id` or (None) at the shops of `ranking_award_shops`."""

    __tablename__ = "ranking_award_prizes"

    award_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ranking_awards.id"), primary_key=True
    )
    count: Mapped[int] = mapped_column(Integer)
    face_value: Mapped[int] = mapped_column(BigInteger)
    valid_days: Mapped[int] = mapped_column(Integer)
    street_id: Mapped[str | None] = mapped_column(String(32))


class RankingAwardShop(Base):
    """A shop where an award's prize vouchers are valid (when they are not for a street)."""

    __tablename__ = "ranking_award_shops"

    award_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ranking_awards.id"), primary_key=True
    )
    shop_id: Mapped[str] = mapped_column(String(16), primary_key=True)


# --- coupon codes (R5.2 methods 2-1 paper, 2-2 e-mail, 2-3 URL) ------------------------------


class CouponBatch(Base):
    """A partner's order of coupon codes: all of one value, delivery and expiry."""

    __tablename__ = "coupon_batches"
    __table_args__ = (UniqueConstraint("actor", "client_key"),)

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    partner: Mapped[str] = mapped_column(String(32), ForeignKey("partners.id"), index=True)
    delivery: Mapped[str] = mapped_column(String(8))  # paper | email | url
    count: Mapped[int] = mapped_column(Integer)
    units: Mapped[int] = mapped_column(BigInteger)  # partner units per coupon
    expires_on: Mapped[date] = mapped_column(Date)  # last Tokyo day a coupon can be redeemed
    actor: Mapped[str] = mapped_column(String(128))
    client_key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str | None] = mapped_column(String(64))  # NULL: ordered before 0023
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Coupon(Base):
    """One coupon code, known only by the SHA-256 of its normalised code; the code itself is
    kept only sealed (AES-GCM) so that the partner can download its batch again."""

    __tablename__ = "coupons"
    __table_args__ = (
        UniqueConstraint("batch_id", "serial"),
        UniqueConstraint("redeemed_actor", "redeem_key"),
    )

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    batch_id: Mapped[UUID] = mapped_column(Uuid, ForeignKey("coupon_batches.id"))
    serial: Mapped[int] = mapped_column(Integer)  # 1..count within the batch
    code_box: Mapped[bytes] = mapped_column(LargeBinary)  # nonce (12 bytes) + ciphertext
    status: Mapped[str] = mapped_column(String(8))  # issued | redeemed
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    redeemed_actor: Mapped[str | None] = mapped_column(String(128))
    redeem_key: Mapped[str | None] = mapped_column(String(128))
    redeem_hash: Mapped[str | None] = mapped_column(String(64))  # the redeeming request's
    conversion_id: Mapped[UUID | None] = mapped_column(Uuid)


class CouponFailure(Base):
    """A redemption of a code that does not exist, per resident, to throttle guessing."""

    __tablename__ = "coupon_failures"
    __table_args__ = (Index("ix_coupon_failures_mykey_id_at", "mykey_id", "at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    mykey_id: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ShoppingStreet(Base):
    """A shopping street (商店街): a group of member shops (a voucher may be valid for all)."""

    __tablename__ = "shopping_streets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    municipality: Mapped[str] = mapped_column(String(6))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Shop(Base):
    """A shop or facility where points are spent (R6). Its id is its provider id (事業者ID):
    a terminal key bound to that provider is a terminal of this shop."""

    __tablename__ = "shops"

    id: Mapped[str] = mapped_column(String(16), ForeignKey("providers.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    municipality: Mapped[str] = mapped_column(String(6))
    kind: Mapped[str] = mapped_column(String(32))
    street_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("shopping_streets.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ShopAccept(Base):
    """A municipality whose points a shop accepts, and the shop's account in that ledger."""

    __tablename__ = "shop_accepts"

    shop_id: Mapped[str] = mapped_column(String(16), ForeignKey("shops.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger)


class ShopPayment(Base):
    """A payment at a counter (the ledger transfer wallet → shop), with what was refunded of it
    and whether it was cancelled; guarded updates of these keep refunds within the payment."""

    __tablename__ = "shop_payments"
    __table_args__ = (Index("ix_shop_payments_shop_created", "shop_id", "created_at"),)

    transfer_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    shop_id: Mapped[str] = mapped_column(String(16), ForeignKey("shops.id"))
    code: Mapped[str] = mapped_column(String(6))
    mykey_id: Mapped[str] = mapped_column(String(8))
    wallet_account_id: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    receipt_ref: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OnlineKey(Base):
    """An online shop's signing key: a terminal key of the shop's provider id, bound here to the
    shop, with its HMAC signing secret encrypted (AES-GCM, as partner keys)."""

    __tablename__ = "online_keys"

    key_id: Mapped[str] = mapped_column(String(16), ForeignKey("api_keys.id"), primary_key=True)
    shop_id: Mapped[str] = mapped_column(String(16), ForeignKey("shops.id"))
    secret_box: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OnlineOrder(Base):
    """An online authorization (the ledger's pending transfer wallet → shop), its capture, the
    fee kept of it and what was refunded; guarded updates keep refunds within the capture."""

    __tablename__ = "online_orders"
    __table_args__ = (Index("ix_online_orders_shop_created", "shop_id", "created_at"),)

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)  # the pending transfer's id
    shop_id: Mapped[str] = mapped_column(String(16), ForeignKey("shops.id"))
    code: Mapped[str] = mapped_column(String(6))
    mykey_id: Mapped[str] = mapped_column(String(8))
    wallet_account_id: Mapped[int] = mapped_column(BigInteger)
    order_ref: Mapped[str | None] = mapped_column(String(64))
    points: Mapped[int] = mapped_column(BigInteger)  # held
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    capture_id: Mapped[UUID | None] = mapped_column(Uuid, unique=True)
    captured: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_permille: Mapped[int] = mapped_column(Integer, default=0)
    fee: Mapped[int] = mapped_column(BigInteger, default=0)  # kept by the municipality at capture
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_returned: Mapped[int] = mapped_column(BigInteger, default=0)  # given back on refunds
    voided: Mapped[bool] = mapped_column(Boolean, default=False)


class OnlineRefund(Base):
    """A refund of an online capture (the transfer shop → wallet) and the fee given back."""

    __tablename__ = "online_refunds"

    transfer_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    order_id: Mapped[UUID] = mapped_column(Uuid, ForeignKey("online_orders.id"), index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    fee_back: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Voucher(Base):
    """A point voucher (ポイント券): points held in the municipality's VOUCHER_FLOAT account
    until a shop redeems the voucher's 13-digit number (EAN-13) or it expires."""

    __tablename__ = "vouchers"
    __table_args__ = (
        UniqueConstraint("receipt_shop_id", "receipt_ref", name="uq_vouchers_receipt"),
        Index("ix_vouchers_status_valid_until", "status", "valid_until"),
        Index("ix_vouchers_issue_transfer", "issue_transfer_id"),
        # a ranking award gives each winner one set of prize vouchers, however often it runs
        Index("uq_vouchers_award_winner", "award_id", "mykey_id", "seq", unique=True),
    )

    number: Mapped[str] = mapped_column(String(13), primary_key=True)
    code: Mapped[str] = mapped_column(String(6))
    program: Mapped[str] = mapped_column(String(16))  # wallet | receipt | gift | prize
    mykey_id: Mapped[str | None] = mapped_column(String(8))
    wallet_account_id: Mapped[int | None] = mapped_column(BigInteger)
    issue_transfer_id: Mapped[UUID] = mapped_column(Uuid)
    seq: Mapped[int] = mapped_column(Integer)  # its place among the vouchers of one issue
    face_value: Mapped[int] = mapped_column(BigInteger)
    issued_on: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)  # the last day it can be redeemed
    issuer_shop_id: Mapped[str | None] = mapped_column(String(16))  # None: a ranking prize
    shop_id: Mapped[str | None] = mapped_column(String(16))  # valid at this shop only, or
    street_id: Mapped[str | None] = mapped_column(String(32))  # at the shops of this street
    receipt_shop_id: Mapped[str | None] = mapped_column(String(16))
    receipt_ref: Mapped[str | None] = mapped_column(String(64))
    receipt_yen: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # issued | redeemed | expired
    redeemed_shop_id: Mapped[str | None] = mapped_column(String(16))
    closing_transfer_id: Mapped[UUID | None] = mapped_column(Uuid)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    prints: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    gift_program_id: Mapped[str | None] = mapped_column(String(32))  # 商品券: its programme
    award_id: Mapped[str | None] = mapped_column(String(36))  # a ranking prize: its award


class GiftProgram(Base):
    """A municipality's gift certificates (商品券, R6.5): points exchanged for numbered paper
    certificates of one fixed denomination, valid `valid_days` days counting the day of the
    exchange, at the member shops of `street_id` or (None) at every shop taking the points."""

    __tablename__ = "gift_programs"
    __table_args__ = (Index("ix_gift_programs_code", "code"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(6), ForeignKey("point_programs.code"))
    name: Mapped[str] = mapped_column(String(100))
    denomination: Mapped[int] = mapped_column(BigInteger)
    valid_days: Mapped[int] = mapped_column(Integer)
    street_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("shopping_streets.id"))
    max_sheets: Mapped[int | None] = mapped_column(Integer)  # per exchange; None: up to 100
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MunicipalityPick(Base):
    """An online-shop pick a municipality shows on Point Navi (R9.5): an item, its price in
    yen and where to buy it. The municipality replaces its whole list at once."""

    __tablename__ = "municipality_picks"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    shop: Mapped[str] = mapped_column(String(200))
    price_yen: Mapped[int] = mapped_column(BigInteger)
    url: Mapped[str | None] = mapped_column(String(400))
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
