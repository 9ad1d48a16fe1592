"""Cosignatures (C2SP tlog-cosignature v1), trust policies (tlog-policy, k of n), and the log's
endpoints for witnesses: signed reads of record bytes, cosignatures collected and served."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mykey.config import Settings
from mykey.history.checkpoints import Checkpoint, NoteError, sign_checkpoint
from mykey.history.cosign import CosignatureVerifier, Cosigner, cosigned_message, key_id
from mykey.history.log import make_checkpoint
from mykey.history.policy import Policy, PolicyError
from mykey.web.app import create_app
from tests.builders import grant, town, wallet
from tests.conftest import LOG_SIGNER, Database

W = [Cosigner(f"w{i}.example.jp", bytes([i + 40]) * 32) for i in range(3)]
CP = Checkpoint(LOG_SIGNER.name, 5, bytes(range(32)))


def cosigned(*signers: Cosigner, stamp: int = 1_800_000_000) -> str:
    note = sign_checkpoint(CP, LOG_SIGNER)
    return note + "".join(s.cosign(CP.text(), stamp) for s in signers)


def test_a_cosignature_is_the_c2sp_format_and_verifies() -> None:
    w = W[0]
    vkey = w.verifier().vkey()
    name, hex_id, key = vkey.split("+", 2)
    raw = base64.b64decode(key)
    assert (name, raw[0], len(raw)) == ("w0.example.jp", 0x04, 33)
    assert int(hex_id, 16) == key_id(name, 0x04, raw[1:])
    assert CosignatureVerifier.from_vkey(vkey) == w.verifier()
    assert Cosigner.from_key(w.key_string()) == w
    line = w.cosign(CP.text(), 1_800_000_000)
    payload = base64.b64decode(line.split(" ")[2])
    # key id ‖ u64 timestamp ‖ Ed25519 signature over "cosignature/v1\ntime …\n<checkpoint>"
    assert len(payload) == 4 + 8 + 64
    assert int.from_bytes(payload[4:12], "big") == 1_800_000_000
    assert cosigned_message(CP.text(), 1_800_000_000).startswith(
        b"cosignature/v1\ntime 1800000000\n"
    )
    assert w.verifier().cosignature_in(cosigned(w)) == 1_800_000_000
    assert W[1].verifier().cosignature_in(cosigned(w)) is None
    # Another checkpoint's text under the same line does not verify.
    other = sign_checkpoint(Checkpoint(CP.origin, 6, CP.root), LOG_SIGNER) + line
    with pytest.raises(NoteError):
        w.verifier().cosignature_in(other)


def _policy(rule: str) -> Policy:
    lines = [f"log {LOG_SIGNER.verifier().vkey()}  # the log"]
    lines += [
        f"witness w{i} {w.verifier().vkey()} https://w{i}.example.jp/" for i, w in enumerate(W)
    ]
    lines += [f"group g {rule} w0 w1 w2", "quorum g"]
    return Policy.parse("\n".join(lines) + "\n")


def test_k_of_n_decides_what_is_trusted() -> None:
    two = _policy("2")
    assert two.check(cosigned(W[0], W[2])).witnesses == ["w0", "w2"]
    with pytest.raises(PolicyError, match="quorum g is not met"):
        two.check(cosigned(W[1]))
    assert _policy("any").check(cosigned(W[1])).witnesses == ["w1"]
    with pytest.raises(PolicyError, match="not met"):
        _policy("all").check(cosigned(W[0], W[1]))
    # A forged cosignature by a known witness rejects the note; an unknown one is ignored.
    forged = cosigned(W[0]).replace(W[0].cosign(CP.text(), 1_800_000_000), W[0].cosign("x\n", 9))
    with pytest.raises(PolicyError):
        two.check(forged + W[1].cosign(CP.text(), 1))
    stranger = Cosigner("stranger.example.jp", b"\x07" * 32)
    with pytest.raises(PolicyError):
        two.check(cosigned(W[0], stranger))
    # Another log's key does not count, whatever its witnesses say.
    from mykey.history.checkpoints import Signer

    other = Signer(LOG_SIGNER.name, b"\x09" * 32)
    with pytest.raises(PolicyError, match="log's signature"):
        two.check(sign_checkpoint(CP, other) + W[0].cosign(CP.text(), 1))


@pytest.mark.parametrize(
    "text",
    [
        "witness w x\nquorum none\n",  # a bad key
        f"log {LOG_SIGNER.verifier().vkey()}\n",  # no quorum
        f"log {LOG_SIGNER.verifier().vkey()}\ngroup g 1 nobody\nquorum g\n",
        f"log {LOG_SIGNER.verifier().vkey()}\nwitness a {W[0].verifier().vkey()}\n"
        "group g 2 a\nquorum g\n",  # threshold above the members
    ],
)
def test_unreadable_policies_are_refused(text: str) -> None:
    with pytest.raises(PolicyError):
        Policy.parse(text)


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database.url,
        environment="test",
        log_signing_key=LOG_SIGNER.key_string(),
        log_witnesses=",".join(w.verifier().vkey() for w in W[:2]),
    )
    app = create_app(settings, clock=database.clock)
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


def test_record_bytes_only_for_the_logs_witnesses(client: TestClient, database: Database) -> None:
    uow = database.uow()
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 100)
    make_checkpoint(uow, LOG_SIGNER)
    target = "/api/v1/log/witness/entries?start=0&end=1"
    anonymous = client.get(target)
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "witness_signature_required")
    now = int(time.time())
    for signer, stamp in ((W[2], now), (W[0], now - 3600)):  # not configured; stale
        refused = client.get(
            target, headers={"X-MyKey-Witness": signer.sign_request(stamp, target)}
        )
        assert refused.status_code == 403
    wrong_target = W[0].sign_request(now, "/api/v1/log/witness/entries?start=0&end=2")
    assert client.get(target, headers={"X-MyKey-Witness": wrong_target}).status_code == 403
    ok = client.get(target, headers={"X-MyKey-Witness": W[0].sign_request(now, target)})
    assert ok.status_code == 200
    (entry,) = ok.json()["entries"]
    assert entry["record"] and entry["salt"] and '"amount": 100' in entry["row"]
    public = client.get("/api/v1/log/entries", params={"start": 0, "end": 1}).json()
    assert "record" not in public["entries"][0]


def test_the_log_keeps_valid_cosignatures_and_serves_them(
    client: TestClient, database: Database
) -> None:
    uow = database.uow()
    t = town(uow)
    grant(uow, t, wallet(uow, t), 100)
    signed = make_checkpoint(uow, LOG_SIGNER)
    text = signed.checkpoint.text()
    post = lambda body: client.post("/api/v1/log/cosignatures", content=body)  # noqa: E731
    stranger = post(signed.note + W[2].cosign(text, 5))
    assert (stranger.status_code, stranger.json()["code"]) == (422, "bad_cosignature")
    other = Checkpoint(signed.checkpoint.origin, 1, bytes(32))
    unknown = post(sign_checkpoint(other, LOG_SIGNER) + W[0].cosign(other.text(), 5))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_checkpoint")
    assert post("not a note").status_code == 422
    assert database.count("history_cosignatures") == 0
    for w in W[:2]:
        kept = post(signed.note + w.cosign(text, 1_800_000_000))
        assert kept.status_code == 200 and kept.json()["witnesses"] == [w.name]
    again = post(signed.note + W[0].cosign(text, 1_800_000_999))
    assert again.status_code == 200
    assert database.count("history_cosignatures") == 2
    note = client.get("/api/v1/log/checkpoint").text
    rules = (
        f"log {LOG_SIGNER.verifier().vkey()}\nwitness a {W[0].verifier().vkey()}\n"
        f"witness b {W[1].verifier().vkey()}\ngroup both all a b\nquorum both\n"
    )
    assert Policy.parse(rules).check(note).witnesses == ["a", "b"]
    assert W[0].verifier().cosignature_in(note) == 1_800_000_000  # the first one kept


def test_witness_keys_and_an_unreachable_log_through_the_cli(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.executable).parent / "mykey"), *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    made = cli("witness", "new-key", "witness.pref27.example.jp")
    assert made.returncode == 0, made.stderr
    cosigner = Cosigner.from_key(made.stdout)
    assert cosigner.verifier().vkey() in made.stderr.replace("\n", "")
    assert cli("witness", "new-key", "bad name").returncode == 2
    unreachable = cli(
        "witness", "check", "--log", "http://127.0.0.1:9", "--log-key",
        LOG_SIGNER.verifier().vkey(), "--key", cosigner.key_string(),
        "--db", f"sqlite:///{tmp_path / 'w.db'}",
    )  # fmt: skip
    assert unreachable.returncode == 2 and "127.0.0.1:9" in unreachable.stderr
