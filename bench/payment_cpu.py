"""Client CPU of one counter payment, in process (issue #14): `spending.pay` N times in a row.

    .venv/bin/python bench/payment_cpu.py            # PostgreSQL (scratch database) and SQLite
    MYKEY_BENCH_PAYMENTS=2000 .venv/bin/python bench/payment_cpu.py
    MYKEY_BENCH_PROFILE=1 .venv/bin/python bench/payment_cpu.py   # + pyinstrument, if installed

The challenges are issued and signed by the simulator card before the timed part (issuing them
is another request); the timed part is the use case alone: key look-up, proof check (RSA
verify), the payment, its rows, the commit. Prints one JSON object: per engine, payments,
`cpu_ms_per_payment` (time.process_time of this process: the server's share, without HTTP),
`wall_ms_per_payment`, and the load average beside it (the machine is shared).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mykey.db import UnitOfWork, make_engine, utcnow  # noqa: E402
from mykey.history.checkpoints import Signer  # noqa: E402
from mykey.history.log import HistoryLog  # noqa: E402
from mykey.identity.proofs import (  # noqa: E402
    CardProof,
    PresentedCard,
    TrustAnchors,
    VerifiedCard,
    issue_challenge,
)
from mykey.identity.residents import create_mykey_id  # noqa: E402
from mykey.identity.simulator import SimulatorCA  # noqa: E402
from mykey.migrations import upgrade  # noqa: E402
from mykey.points import spending  # noqa: E402
from mykey.points.grants import grant_points  # noqa: E402
from mykey.points.shops import set_shop  # noqa: E402
from scratch import TENRI, on_scratch_postgres, tenri_points  # noqa: E402 -- bench/scratch.py, beside this file

PG_URL = os.environ.get(
    "MYKEY_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PAYMENTS = int(os.environ.get("MYKEY_BENCH_PAYMENTS", "500"))
PROFILE = bool(os.environ.get("MYKEY_BENCH_PROFILE"))
ACTOR = "terminal:bench-cpu"
LOG = HistoryLog(Signer("bench.mykey.invalid/history", bytes(range(32))))


def measure(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    upgrade(engine)
    ca = SimulatorCA.create(now=utcnow() - timedelta(days=30))
    card = ca.issue(now=utcnow() - timedelta(days=1))
    anchors = TrustAnchors((ca.certificate,))

    def uow() -> UnitOfWork:
        return UnitOfWork(engine, log=LOG)

    tenri_points(uow())
    set_shop(
        uow(), shop_id="cpu-shop", name="計測商店", municipality=TENRI, kind="shop", accepts=[TENRI]
    )
    verified = VerifiedCard(card.card_key, card.certificate.not_valid_after_utc)
    create_mykey_id(uow(), card=verified, password="bench password", mykey_id="MY888888")
    for n in range(5):
        grant_points(
            uow(),
            municipality=TENRI,
            mykey_id="MY888888",
            actor="staff:bench",
            key=f"fill-{n}",
            reason="bench",
            points=PAYMENTS,
        )
    done = 0
    cpu = wall = 0.0
    profiler: Any = None
    if PROFILE:
        from pyinstrument import Profiler  # type: ignore[import-not-found]

        profiler = Profiler(interval=0.0002)
    while done < PAYMENTS:  # rounds of 200: a challenge lives 60 s
        batch = []
        for _ in range(min(200, PAYMENTS - done)):
            challenge = issue_challenge(uow(), key=anchors.challenge_key, asker=None)
            signed = card.proof(challenge.id, challenge.nonce)
            batch.append(
                PresentedCard(
                    CardProof(signed["certificate"], signed["challenge_id"], signed["signature"]),
                    anchors,
                    ACTOR,
                )
            )
        if profiler is not None:
            profiler.start()
        c0, w0 = time.process_time(), time.perf_counter()
        for presented in batch:
            spending.pay(
                uow(),
                shop_id="cpu-shop",
                card=presented,
                municipality=TENRI,
                points=1,
                actor=ACTOR,
                key=f"pay-{done}",
            )
            done += 1
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
        if profiler is not None:
            profiler.stop()
    if profiler is not None:
        out = Path(tempfile.gettempdir()) / f"mykey-pay-profile-{engine.dialect.name}.txt"
        out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        print(f"profile: {out}", file=sys.stderr)
    engine.dispose()
    return {
        "payments": done,
        "cpu_ms_per_payment": round(cpu / done * 1000, 3),
        "wall_ms_per_payment": round(wall / done * 1000, 3),
        "loadavg": os.getloadavg(),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        sqlite = measure(f"sqlite:///{folder}/bench.db")
    pg = on_scratch_postgres(PG_URL, "mykey_bench_cpu", measure)
    print(json.dumps({"postgresql": pg, "sqlite": sqlite}, indent=2))


if __name__ == "__main__":
    main()
