"""Check a resident's inclusion proof offline:

    python -m mykey.history.verify proof.json checkpoint.txt --key '<verifier key>'
    python -m mykey.history.verify proof.json checkpoint.txt --policy policy.txt

proof.json is what `GET /api/v1/me/transfers/{id}/proof` returned; checkpoint.txt is a signed
checkpoint (that receipt's "checkpoint", or one fetched from /api/v1/log/checkpoint or from a
witness); the verifier key is the log's, published out of band (`mykey log key`). With
--policy (a C2SP tlog-policy file: the log's key, the witnesses' keys and the quorum, e.g. "2 of
3 witnesses") the checkpoint must also carry enough valid witness cosignatures.
Exit status 0: proven; 1: not proven (the reason is printed); 2: unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mykey.history.policy import Policy, PolicyError
from mykey.history.receipts import ReceiptError, verify_receipt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mykey.history.verify", description=__doc__)
    parser.add_argument("proof", type=Path, help="the receipt (JSON)")
    parser.add_argument("checkpoint", type=Path, help="a signed checkpoint (text)")
    parser.add_argument("--key", help="the log's verifier key (vkey)")
    parser.add_argument("--policy", type=Path, help="a tlog-policy file (k of n witnesses)")
    args = parser.parse_args(argv)
    try:
        receipt = json.loads(args.proof.read_text(encoding="utf-8"))
        note = args.checkpoint.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        print(f"cannot read the input: {exc}", file=sys.stderr)
        return 2
    if args.key is None and args.policy is None:
        print("give --key or --policy", file=sys.stderr)
        return 2
    witnesses: list[str] = []
    vkey = args.key
    try:
        if args.policy is not None:
            policy = Policy.load(args.policy)
            result = policy.check(note)
            witnesses = result.witnesses
            logs = [v for v in policy.logs if v.name == result.checkpoint.origin]
            vkey = vkey or logs[0].vkey()
        summary = verify_receipt(receipt, note, vkey)
    except (ReceiptError, PolicyError) as exc:
        print(f"NOT PROVEN / 証明できません: {exc}")
        return 1
    if args.policy is not None:
        summary["witnesses"] = witnesses
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    print("PROVEN / 証明されました: the record is in the log at this checkpoint.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
