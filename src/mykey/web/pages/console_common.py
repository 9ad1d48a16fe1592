"""What the three consoles (municipality staff, council, partners) share: file uploads
without extra packages, the party check, number fields, and showing a domain error."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP

from fastapi import Request

from mykey.errors import MyKeyError
from mykey.identity.staff import csrf_matches
from mykey.web.pages.base import CSRF_FIELD, Page, PageProblem, form_fields

MAX_UPLOAD = 20 * 1024 * 1024  # bytes of one form post with a file


@dataclass
class Upload:
    """A POSTed form (url-encoded or multipart) whose CSRF token matched."""

    fields: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict)


async def checked_upload(request: Request, page: Page) -> Upload:
    """The fields and files of a `multipart/form-data` post (or a plain form), after the CSRF
    check; a wrong token or a body too large is a page that says so."""
    kind = request.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        fields = await form_fields(request)
        files: dict[str, bytes] = {}
    else:
        body = await request.body()
        if len(body) > MAX_UPLOAD:
            raise PageProblem(413, "console.upload.too_large", "console.upload.too_large_body")
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + kind.encode("latin-1") + b"\r\n\r\n" + body
        )
        fields, files = {}, {}
        parts = message.iter_parts() if message.is_multipart() else iter(())
        for part in parts:
            assert isinstance(part, Message)
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            if filename:
                files[name] = data
            elif filename is None:
                fields[name] = data.decode("utf-8", errors="replace")
            # else: a file part with an empty filename is a file input left empty
    if not csrf_matches(page.session, fields.get(CSRF_FIELD)):
        raise PageProblem(403, "error.csrf.title", "error.csrf.body")
    return Upload(fields, files)


def new_key() -> str:
    """An idempotency key for a form: sent back with it, so a resent form acts once."""
    return secrets.token_hex(16)


def message_of(page: Page, error: MyKeyError) -> str:
    """The domain's own text of an error, in the page's language."""
    return error.message if page.lang == "en" else error.message_ja


def not_yours() -> PageProblem:
    """Another party's page: refused without telling what is there."""
    return PageProblem(403, "error.forbidden.title", "error.forbidden.body")


class Form:
    """Reading a posted form field by field, collecting what is wrong next to each field."""

    def __init__(self, page: Page, fields: dict[str, str]) -> None:
        self.page = page
        self.fields = fields
        self.errors: dict[str, str] = {}

    def text(self, name: str, *, required: bool = False) -> str:
        value = self.fields.get(name, "").strip()
        if required and not value:
            self.errors[name] = self.page.t("console.field.missing")
        return value

    def integer(self, name: str, *, required: bool = False, minimum: int = 0) -> int | None:
        value = self.fields.get(name, "").strip().replace(",", "")
        if not value:
            if required:
                self.errors[name] = self.page.t("console.field.missing")
            return None
        if not value.isascii() or not value.isdigit() or int(value) < minimum:
            self.errors[name] = self.page.t("console.field.integer", minimum=minimum)
            return None
        return int(value)

    def fail(self, name: str, error: MyKeyError) -> None:
        self.errors[name] = message_of(self.page, error)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> list[tuple[str, str]]:
        return list(self.errors.items())
