"""The console's forms and stored refusals (issue #13, item 7): a refused grant is stored
under the form's key, so the form shown again with the refusal carries a new key; the staff
member who puts the request right and sends it again gets it done, not a reused-key error."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Database
from tests.pages.test_console_town import (  # noqa: F401 -- the fixture
    TOSHIMA,
    balance,
    client,
    csrf,
    hidden,
    login,
)


def test_a_refused_grant_gives_the_form_a_new_key(client: TestClient, database: Database) -> None:  # noqa: F811 -- the fixture
    login(client, "toshima")
    form = client.get(f"/console/m/{TOSHIMA}/grants?lang=en").text
    first = {"csrf_token": csrf(form), "key": hidden(form, "key"), "mykey_id": "AB123456"}
    first |= {"activity": "", "points": "999900", "reason": "big", "event": ""}
    done = client.post(f"/console/m/{TOSHIMA}/grants/one", data=first)
    assert done.status_code == 200, done.text

    form = client.get(f"/console/m/{TOSHIMA}/grants?lang=en").text
    sent = {"csrf_token": csrf(form), "key": hidden(form, "key"), "mykey_id": "CD234567"}
    sent |= {"activity": "", "points": "300", "reason": "over the budget", "event": ""}
    refused = client.post(f"/console/m/{TOSHIMA}/grants/one", data=sent)
    assert refused.status_code == 422
    assert "budget" in refused.text
    again = hidden(refused.text, "key")
    assert again != sent["key"]  # the refusal is stored under the key that was sent

    # Sent again as it was (a double click on the old page): the stored refusal, nothing more.
    twice = client.post(f"/console/m/{TOSHIMA}/grants/one", data=sent)
    assert twice.status_code == 422 and "budget" in twice.text
    # Put right (100 points fit) and sent from the page shown with the refusal: granted.
    fixed = sent | {"key": again, "points": "100", "csrf_token": csrf(refused.text)}
    granted = client.post(f"/console/m/{TOSHIMA}/grants/one", data=fixed)
    assert granted.status_code == 200, granted.text
    assert (balance(database, "AB123456"), balance(database, "CD234567")) == (999_900, 100)
