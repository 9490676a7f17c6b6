"""Signing in to the console with a token, where JWT sign-in is configured."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.console.browsing import Console, OpenPage, PageProblems
from tests.gateway.identity_provider import AUDIENCE, ISSUER, Signer

SIGNER = Signer.rsa("console-test")


@pytest.fixture(scope="module")
def console_settings() -> dict[str, str]:
    return {
        "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE,
        "JWT_PUBLIC_KEY": SIGNER.public_pem(),
    }


def test_a_token_signs_in_and_stays_for_the_tab_only(console: Console, open_page: OpenPage) -> None:
    page = open_page()
    page.goto(console.url)
    token = SIGNER.token(sub="carol@idp", name="Carol")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in with token").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_text("Carol (user)")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('cgw.credential')") == token
    assert page.evaluate("localStorage.length") == 0

    page.reload()  # the same tab keeps it
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('cgw.credential')") is None


def test_an_expired_token_is_refused(
    console: Console, open_page: OpenPage, page_problems: PageProblems
) -> None:
    page_problems.expect("status of 401")
    page = open_page()
    page.goto(console.url)
    page.get_by_label("Token").fill(SIGNER.token(sub="dave@idp", exp=1, iat=0))
    page.get_by_role("button", name="Sign in with token").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
