"""Which checkpoints a client trusts: a C2SP tlog-policy file ("k of n witnesses").

    # comments and blank lines are ignored
    log <vkey of the log> [<url>]
    witness <name> <cosignature vkey> [<url>]
    group <name> all|any|<k> <member> ...      members: witnesses or groups defined above
    quorum <name>|none

Example (2 of 3 witnesses):

    log points.example.jp/tx/2026+75e67862+ATLp...
    witness osaka witness.osaka.example.jp+1a2b3c4d+BBx... https://witness.osaka.example.jp/
    witness kyoto witness.kyoto.example.jp+...
    witness nara  witness.nara.example.jp+...
    group two-of-three 2 osaka kyoto nara
    quorum two-of-three

A checkpoint is trusted when a `log` key signed it (origin = the key name) and the witnesses
whose cosignatures verify satisfy the quorum group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mykey.history.checkpoints import Checkpoint, NoteError, Verifier, open_note
from mykey.history.cosign import CosignatureVerifier


class PolicyError(ValueError):
    """A policy file that cannot be read, or a checkpoint that does not satisfy it."""


@dataclass(frozen=True)
class Group:
    name: str
    threshold: int  # how many members must be satisfied
    members: tuple[str, ...]


@dataclass
class Policy:
    logs: list[Verifier] = field(default_factory=list)
    witnesses: dict[str, CosignatureVerifier] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    quorum: str | None = None  # None: no witness needed ("quorum none")

    @classmethod
    def parse(cls, text: str) -> Policy:
        policy = cls()
        seen_quorum = False
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            word, *args = line.split()
            try:
                policy._line(word, args, seen_quorum)
            except (NoteError, ValueError) as exc:
                raise PolicyError(f"policy line {number}: {exc}") from exc
            seen_quorum = seen_quorum or word == "quorum"
        if not seen_quorum:
            raise PolicyError("the policy has no quorum line")
        if not policy.logs:
            raise PolicyError("the policy names no log")
        return policy

    @classmethod
    def load(cls, path: Path) -> Policy:
        try:
            return cls.parse(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise PolicyError(f"cannot read the policy {path}: {exc}") from exc

    def _line(self, word: str, args: list[str], seen_quorum: bool) -> None:
        if word == "log" and len(args) in (1, 2):
            self.logs.append(Verifier.from_vkey(args[0]))
        elif word == "witness" and len(args) in (2, 3):
            name = args[0]
            self._new_name(name)
            self.witnesses[name] = CosignatureVerifier.from_vkey(args[1])
            if len(args) == 3:
                self.urls[name] = args[2]
        elif word == "group" and len(args) >= 3:
            name, rule, members = args[0], args[1], tuple(args[2:])
            self._new_name(name)
            for m in members:
                if m not in self.witnesses and m not in self.groups:
                    raise ValueError(f"group {name}: {m} is not defined above")
            if len(set(members)) != len(members):
                raise ValueError(f"group {name}: a member is listed twice")
            if rule == "all":
                k = len(members)
            elif rule == "any":
                k = 1
            elif rule.isdigit() and 1 <= int(rule) <= len(members):
                k = int(rule)
            else:
                raise ValueError(f"group {name}: 'all', 'any' or 1..{len(members)}, not {rule}")
            self.groups[name] = Group(name, k, members)
        elif word == "quorum" and len(args) == 1 and not seen_quorum:
            if args[0] != "none" and args[0] not in self.witnesses and args[0] not in self.groups:
                raise ValueError(f"quorum {args[0]} is not defined above")
            self.quorum = None if args[0] == "none" else args[0]
        else:
            raise ValueError(f"cannot read {word!r} with {len(args)} argument(s)")

    def _new_name(self, name: str) -> None:
        if name in self.witnesses or name in self.groups or name == "none":
            raise ValueError(f"{name} is defined twice")

    def _satisfied(self, name: str, signed: set[str]) -> bool:
        if name in self.witnesses:
            return name in signed
        group = self.groups[name]
        return sum(self._satisfied(m, signed) for m in group.members) >= group.threshold

    def check(self, note: str) -> PolicyResult:
        """Verify the log's signature and the cosignatures; raise `PolicyError` unless the
        quorum is met."""
        try:
            text, _ = open_note(note, *self.logs)
            checkpoint = Checkpoint.parse(text)
        except NoteError as exc:
            raise PolicyError(f"the log's signature: {exc}") from exc
        if checkpoint.origin not in {v.name for v in self.logs}:
            raise PolicyError(f"origin {checkpoint.origin!r} is not a log of the policy")
        signed: set[str] = set()
        for name, verifier in self.witnesses.items():
            try:
                if verifier.cosignature_in(note) is not None:
                    signed.add(name)
            except NoteError as exc:
                raise PolicyError(str(exc)) from exc
        if self.quorum is not None and not self._satisfied(self.quorum, signed):
            raise PolicyError(
                f"the quorum {self.quorum} is not met: cosigned by"
                f" {', '.join(sorted(signed)) or 'no witness'}"
            )
        return PolicyResult(checkpoint, sorted(signed))


@dataclass(frozen=True)
class PolicyResult:
    checkpoint: Checkpoint
    witnesses: list[str]
