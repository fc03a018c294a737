"""Sign-in, lockout, sessions, CSRF and the security headers, through Starlette's TestClient."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from crmcore.models import AuditEntry
from crmcore.models.user import ConsoleSession, User
from tests.console.conftest import PASSWORD, csrf_of, sign_in


def audit(crm, action):
    """(entity_id, after) of the audit entries of ``action``."""
    with crm.unit_of_work("boss", read_only=True) as uow:
        return [(e.entity_id, e.after) for e in uow.session.scalars(select(AuditEntry).where(AuditEntry.action == action))]


def test_signed_out_pages_redirect_to_sign_in(client):
    c = client(None)
    r = c.get("/console/customers?search=x", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/signin?next=%2Fconsole%2Fcustomers%3Fsearch%3Dx"
    assert c.get("/console", follow_redirects=False).headers["location"] == "/console/"


def test_security_headers_on_every_page(client):
    c = client(None)
    for path in ("/console/signin", "/console/static/console.css", "/console/nowhere"):
        r = c.get(path)
        assert r.headers["content-security-policy"].startswith("default-src 'self'; frame-ancestors 'none'"), path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
    assert "<script>" not in c.get("/console/signin").text  # no inline script: the CSP allows none


def test_good_sign_in_sets_a_strict_cookie_and_audits(client, console_crm):
    c = client(None)
    r = sign_in(c, "anna")
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = r.headers["set-cookie"]
    assert "crm_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http here; https requests get Secure
    assert "Anna Berg" in c.get("/console/").text
    assert [e for e, _ in audit(console_crm, "signin")] == [str(_uid(console_crm, "anna"))]


def test_https_cookie_is_secure(console_crm):
    from starlette.testclient import TestClient

    from crmcore.api import create_app
    from crmcore.console import with_console

    with TestClient(with_console(create_app(console_crm), console_crm), base_url="https://crm.example") as c:
        assert "Secure" in sign_in(c, "anna").headers["set-cookie"]


def test_bad_password_and_unknown_user_get_the_same_answer(client):
    c = client(None)
    bad = sign_in(c, "anna", "wrong password 1")
    nobody = sign_in(c, "nobody", "wrong password 1")
    assert bad.status_code == nobody.status_code == 401
    assert "Wrong user name or password." in bad.text and "Wrong user name or password." in nobody.text
    assert 'value="anna"' in bad.text  # the user name is kept in the form


def _uid(crm, name):
    with crm.unit_of_work("boss", read_only=True) as uow:
        return uow.session.scalar(select(User.id).where(User.username == name))


def test_lockout_with_back_off_refuses_even_the_right_password(client, console_crm):
    c = client(None)
    for _ in range(2):
        assert "Wrong user name" in sign_in(c, "anna", "wrong password 1").text
    third = sign_in(c, "anna", "wrong password 1")
    assert "locked for 1 minute" in third.text
    r = sign_in(c, "anna")  # the right password, but locked
    assert r.status_code == 401 and "locked" in r.text
    fourth = sign_in(client(None), "sam")  # others are not affected
    assert fourth.status_code == 303
    with console_crm.unit_of_work("boss") as uow:
        u = uow.users.get_by_username("anna")
        assert u.failed_logins == 3
        first_lock = u.locked_until
        u.locked_until = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # the lock ran out
    assert "locked for 2 minutes" in sign_in(c, "anna", "wrong password 1").text  # back-off doubles
    with console_crm.unit_of_work("boss") as uow:
        assert uow.users.get_by_username("anna").locked_until > first_lock
        uow.users.get_by_username("anna").locked_until = None
    assert sign_in(c, "anna").status_code == 303  # a success resets the counter
    with console_crm.unit_of_work("boss", read_only=True) as uow:
        assert uow.users.get_by_username("anna").failed_logins == 0
    assert len(audit(console_crm, "signin_failed")) == 4 and len(audit(console_crm, "signin_locked")) == 1


def test_post_without_or_with_a_wrong_csrf_token_is_refused(client, console_crm):
    c = client("boss")
    form = {"name": "Evil Corp", "kind": "organization", "lifecycle_stage": "prospect"}
    assert c.post("/console/customers/new", data=form).status_code == 403
    r = c.post("/console/customers/new", data={**form, "csrf": "x" * 64})
    assert r.status_code == 403 and "security token" in r.text
    with console_crm.unit_of_work("boss", read_only=True) as uow:
        assert [x.name for x in uow.customers.search(__import__("crmcore").schemas.CustomerQuery(search="Evil")).items] == []
    token = csrf_of(c.get("/console/customers/new").text)
    ok = c.post("/console/customers/new", data={**form, "csrf": token}, follow_redirects=False)
    assert ok.status_code == 303
    # htmx sends the token as a header instead
    assert c.post("/console/customers/new", data={**form, "name": "Via Header"}, headers={"X-CSRF-Token": token},
                  follow_redirects=False).status_code == 303


def test_sign_in_form_needs_its_own_token(client):
    c = client(None)
    c.get("/console/signin")
    r = c.post("/console/signin", data={"username": "anna", "password": PASSWORD})
    assert r.status_code == 403


def test_sign_out_and_revoked_sessions_end(client, cli, console_crm):
    c = client("anna")
    assert c.get("/console/", follow_redirects=False).status_code == 200
    res = cli("user", "sessions", "revoke", "anna", user="boss")
    assert res.exit_code == 0 and res.output.strip() == "revoked 1 console session of anna"
    assert c.get("/console/", follow_redirects=False).status_code == 303
    c2 = client("anna")
    token = csrf_of(c2.get("/console/").text)
    assert c2.post("/console/signout", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert c2.get("/console/", follow_redirects=False).status_code == 303
    with console_crm.unit_of_work("boss", read_only=True) as uow:
        assert all(s.revoked_at is not None for s in uow.session.scalars(select(ConsoleSession)))


def test_sessions_expire_when_idle_or_old(client, console_crm):
    c = client("anna")
    with console_crm.unit_of_work("boss") as uow:
        s = uow.session.scalar(select(ConsoleSession))
        s.last_seen_at = s.last_seen_at - dt.timedelta(hours=3)  # idle longer than idle_minutes (120)
    assert c.get("/console/", follow_redirects=False).status_code == 303
    c = client("anna")
    with console_crm.unit_of_work("boss") as uow:
        s = uow.session.scalars(select(ConsoleSession).order_by(ConsoleSession.id.desc())).first()
        s.expires_at = s.created_at  # past its absolute end
    assert c.get("/console/", follow_redirects=False).status_code == 303


def test_deactivated_user_is_signed_out(client, console_crm):
    c = client("anna")
    with console_crm.unit_of_work("boss") as uow:
        uow.users.set_active("anna", False)
    assert c.get("/console/", follow_redirects=False).status_code == 303
    assert sign_in(c, "anna").status_code == 401


def test_next_is_never_an_open_redirect(client):
    c = client(None)
    page = c.get("/console/signin")
    for bad in ("https://evil.example/", "//evil.example/", "/console/\\evil", "/elsewhere"):
        r = c.post("/console/signin", data={"csrf": csrf_of(page.text), "username": "anna", "password": PASSWORD,
                                            "next": bad}, follow_redirects=False)
        assert r.headers.get("location") == "/console/", (bad, r.status_code, r.text[-800:])


def test_user_password_command(cli, console_crm):
    res = cli("user", "password", "anna", input="short\n", user="boss")
    assert res.exit_code == 1 and res.output.strip() == "error: invalid input: password: at least 10 characters"
    res = cli("user", "password", "anna", input="another good one\n", user="sam")
    assert res.exit_code == 1 and "lacks user.manage" in res.output
    res = cli("user", "password", "nobody", input="another good one\n", user="boss")
    assert res.exit_code == 1 and "user 'nobody' not found" in res.output
    res = cli("user", "password", "anna", input="another good one\n", user="boss")
    assert res.exit_code == 0 and res.output.startswith("password of anna set")
    res = cli("user", "password", "anna", input="my own new pass\n", user="anna")  # one's own needs no permission
    assert res.exit_code == 0
    with console_crm.unit_of_work("boss", read_only=True) as uow:
        h = uow.users.get_by_username("anna").password_hash
        assert h.startswith("$argon2id$") and "my own new pass" not in h
    entries = audit(console_crm, "password")
    assert entries and all("my own" not in str(after) for _, after in entries)


def test_authenticate_hook_signs_in_without_a_password(client, console_crm):
    from crmcore import Veto, hookimpl

    class SSO:
        @hookimpl
        def crm_console_authenticate(self, request, username, password):
            if request.headers.get("x-sso-user"):
                return request.headers["x-sso-user"]
            if username == "blocked":
                raise Veto("this account signs in through the company portal")
            return None

    console_crm.hooks.register(__import__("crmcore.plugins", fromlist=["describe"]).describe("sso", SSO()))
    c = client(None, **{"x-sso-user": "carl"})
    assert sign_in(c, "whoever", "anything at all").status_code == 303
    assert "Carl Credit" in c.get("/console/").text
    r = sign_in(client(None), "blocked", "anything at all")
    assert r.status_code == 401 and "company portal" in r.text
    assert sign_in(client(None), "anna").status_code == 303  # None: the password decides
    assert audit(console_crm, "signin_refused")
