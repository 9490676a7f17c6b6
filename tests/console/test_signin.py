"""Signing in and out of the console."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.console.browsing import Console, OpenPage, PageProblems, sign_in


def test_a_user_signs_in_with_an_api_key_and_sees_their_name(
    console: Console, open_page: OpenPage
) -> None:
    key = console.user("signin-alice")
    page = open_page()
    page.goto(console.url)
    # Without JWT settings the page offers the key alone.
    expect(page.get_by_label("API key")).to_be_visible()
    expect(page.get_by_label("Token")).to_have_count(0)
    sign_in(page, console.url, key)
    expect(page.get_by_text("signin-alice (user)")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('cgw.credential')") == key
    assert page.evaluate("localStorage.length") == 0


def test_a_wrong_key_is_refused_with_a_clear_error(
    console: Console, open_page: OpenPage, page_problems: PageProblems
) -> None:
    page_problems.expect("status of 401")
    page = open_page()
    page.goto(console.url)
    page.get_by_label("API key").fill("cgw_not_a_key")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
