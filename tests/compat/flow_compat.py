"""Authorization-code + PKCE flow checks for sdk_compat.py.

The official SDK's AdminApi plays the login and consent app; a cookie-keeping
`requests` session with redirects off plays the browser; the id_token is
verified with jwcrypto, independently of the server's own code.

Checks share state in order: when one step fails, the steps that need its
result fail too (with a clear "needs ..." message) instead of hanging.

After the flow: the consent/login session admin API (list and revoke consent
sessions, forget login sessions) and logout (the logout app hand-over with
the SDK's logout request API, and RP-initiated logout with an id_token_hint).
"""
import base64
import hashlib
import json
import secrets
import uuid
from datetime import datetime, timezone
from urllib.parse import parse_qs, quote_plus, urlsplit

import ory_hydra_client
import requests
from jwcrypto import jwk, jwt
from ory_hydra_client.api import public_api
from ory_hydra_client.exceptions import ApiException, NotFoundException
from ory_hydra_client.model.accept_consent_request import AcceptConsentRequest
from ory_hydra_client.model.accept_login_request import AcceptLoginRequest
from ory_hydra_client.model.consent_request_session import ConsentRequestSession
from ory_hydra_client.model.flush_inactive_o_auth2_tokens_request import (
    FlushInactiveOAuth2TokensRequest,
)
from ory_hydra_client.model.logout_request import LogoutRequest
from ory_hydra_client.model.o_auth2_client import OAuth2Client
from ory_hydra_client.model.oauth2_token_response import Oauth2TokenResponse
from ory_hydra_client.model.previous_consent_session import PreviousConsentSession
from ory_hydra_client.model.reject_request import RejectRequest
from ory_hydra_client.model.string_slice_pipe_delimiter import (
    StringSlicePipeDelimiter as Strings,
)
from ory_hydra_client.model_utils import validate_and_convert_types

REDIRECT_URI = "http://127.0.0.1:5555/cb"
# The client's registered post-logout redirect (RP-initiated logout); nothing listens.
RP_LOGOUT_URI = "http://127.0.0.1:5555/logged-out"
SCOPES = ["openid", "offline"]
HTTP_TIMEOUT = 10


# ---------------------------------------------------------------- helpers
def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sdk_parse(data, model):
    """Deserialise raw JSON with the SDK's own (type-checking) machinery."""
    return validate_and_convert_types(
        data, (model,), ["received_data"], True, True,
        configuration=ory_hydra_client.Configuration(),
    )


def query_of(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def without_query(url):
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}{p.path}"


def new_browser():
    """A fresh cookie jar; every request below passes allow_redirects=False."""
    return requests.Session()


def hop(browser, url):
    """One browser GET with redirects off; must be a 302. Returns Location."""
    r = browser.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 302, f"GET {url}: expected 302, got {r.status_code}: {r.text[:300]}"
    loc = r.headers.get("Location")
    assert loc, f"GET {url}: 302 without Location"
    return loc


def ui_challenge(browser, url, params, ui_url, name):
    """GET `url` with `params` (redirects off): must be a 302 to the UI at `ui_url` carrying
    the challenge `name`. Returns the challenge."""
    r = browser.get(url, params=params, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 302, f"{urlsplit(url).path}: {r.status_code} {r.text[:300]}"
    loc = r.headers["Location"]
    assert without_query(loc) == ui_url, f"expected redirect to {ui_url}, got {loc}"
    ch = query_of(loc).get(name)
    assert ch, f"no {name} in {loc}"
    return ch


def cookie_names(browser):
    return {c.name for c in browser.cookies}


def pkce_pair():
    verifier = b64url(secrets.token_bytes(48))  # 64 chars of [A-Za-z0-9-_]
    challenge = b64url(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge


class Need:
    """Shared flow state; reading a missing key explains which step is missing."""

    def __init__(self):
        self._d = {}

    def __getitem__(self, k):
        if k not in self._d:
            raise AssertionError(f"needs {k!r} from an earlier step that failed")
        return self._d[k]

    def __setitem__(self, k, v):
        self._d[k] = v


# ---------------------------------------------------------------- the checks
def register(check, admin, public_url, login_url, consent_url, logout_url, post_logout_url):
    issuer = public_url + "/"
    client_id = f"compat-flow-{uuid.uuid4()}"
    client_secret = secrets.token_hex(24)  # alphanumeric: no form-encoding ambiguity
    basic = (quote_plus(client_id), quote_plus(client_secret))
    token_url = f"{public_url}/oauth2/token"
    st = Need()

    public_basic = public_api.PublicApi(
        ory_hydra_client.ApiClient(
            ory_hydra_client.Configuration(
                host=public_url, username=client_id, password=client_secret
            )
        )
    )

    def introspect(token):
        return admin.introspect_o_auth2_token(token)

    def assert_inactive(token, what):
        i = introspect(token)
        assert i.active is False, f"{what} should be inactive, introspection: {i}"

    def start(browser, **extra):
        """GET /oauth2/auth; returns (flow params, login_challenge)."""
        verifier, challenge = pkce_pair()
        flow = {
            "state": secrets.token_urlsafe(12),
            "nonce": secrets.token_urlsafe(12),
            "verifier": verifier,
        }
        params = {
            "client_id": client_id,
            "response_type": "code",
            "scope": " ".join(SCOPES),
            "redirect_uri": REDIRECT_URI,
            "state": flow["state"],
            "nonce": flow["nonce"],
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        ch = ui_challenge(browser, f"{public_url}/oauth2/auth", params, login_url, "login_challenge")
        return flow, ch

    def accept_login(ch, subject="alice", remember=True):
        r = admin.accept_login_request(
            ch, body=AcceptLoginRequest(subject=subject, remember=remember, remember_for=3600)
        )
        assert r.redirect_to.startswith(f"{public_url}/oauth2/auth?"), r.redirect_to
        assert query_of(r.redirect_to).get("login_verifier"), r.redirect_to
        return r.redirect_to

    def to_consent(browser, redirect_to):
        loc = hop(browser, redirect_to)
        assert without_query(loc) == consent_url, f"expected consent UI, got {loc}"
        ch = query_of(loc).get("consent_challenge")
        assert ch, f"no consent_challenge in {loc}"
        return ch

    def accept_consent(ch):
        r = admin.accept_consent_request(
            ch,
            body=AcceptConsentRequest(
                grant_scope=Strings(list(SCOPES)),
                grant_access_token_audience=Strings([]),
                remember=True,
                remember_for=3600,
                session=ConsentRequestSession(
                    id_token={"email": "alice@example.com"},
                    access_token={"role": "admin"},
                ),
            ),
        )
        assert r.redirect_to.startswith(f"{public_url}/oauth2/auth?"), r.redirect_to
        assert query_of(r.redirect_to).get("consent_verifier"), r.redirect_to
        return r.redirect_to

    def to_client(browser, redirect_to, flow):
        loc = hop(browser, redirect_to)
        assert without_query(loc) == REDIRECT_URI, f"expected client redirect, got {loc}"
        q = query_of(loc)
        assert q.get("state") == flow["state"], f"state lost: {loc}"
        return q

    def exchange(code, verifier):
        return requests.post(
            token_url,
            auth=basic,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            timeout=HTTP_TIMEOUT,
        )

    def full_flow(browser):
        """Whole flow in one go (for the later checks); returns (flow, code)."""
        flow, ch = start(browser)
        cch = to_consent(browser, accept_login(ch))
        q = to_client(browser, accept_consent(cch), flow)
        assert q.get("code"), q
        return flow, q["code"]

    def tokens_from_full_flow(browser):
        flow, code = full_flow(browser)
        r = exchange(code, flow["verifier"])
        assert r.status_code == 200, f"token exchange: {r.status_code} {r.text}"
        return r.json()

    def expect_oauth_error(r, status, error):
        assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
        body = r.json()
        assert body.get("error") == error, f"expected error {error!r}: {body}"

    # 1. client
    def t_client():
        c = admin.create_o_auth2_client(
            OAuth2Client(
                client_id=client_id,
                client_secret=client_secret,
                client_name="compat flow",
                redirect_uris=Strings([REDIRECT_URI]),
                grant_types=Strings(["authorization_code", "refresh_token"]),
                response_types=Strings(["code"]),
                scope=" ".join(SCOPES),
                token_endpoint_auth_method="client_secret_basic",
                post_logout_redirect_uris=Strings([RP_LOGOUT_URI]),
            )
        )
        assert c.client_id == client_id
        assert c.token_endpoint_auth_method == "client_secret_basic"
        assert c.post_logout_redirect_uris.value == [RP_LOGOUT_URI], c.post_logout_redirect_uris
        assert c.grant_types.value == ["authorization_code", "refresh_token"]
        st["client"] = True

    # 2. /oauth2/auth -> login UI
    def t_auth_to_login():
        st["client"]
        b = new_browser()
        flow, ch = start(b)
        assert len(ch) == 32 and all(x in "0123456789abcdef" for x in ch), ch
        assert any(n.startswith("oauth2_authentication_csrf") for n in cookie_names(b)), (
            f"no login CSRF cookie set: {cookie_names(b)}"
        )
        st["browser"], st["flow"], st["login_challenge"] = b, flow, ch

    # 3. login + consent via the SDK
    def t_get_login():
        ch = st["login_challenge"]
        lr = admin.get_login_request(ch)
        assert lr.challenge == ch
        assert lr.client.client_id == client_id
        assert not getattr(lr.client, "client_secret", None), "secret leaked in login request"
        assert lr.requested_scope.value == SCOPES, lr.requested_scope
        assert lr.requested_access_token_audience.value == []
        assert lr.skip is False and lr.subject == ""
        assert lr.request_url.startswith(f"{public_url}/oauth2/auth?"), lr.request_url
        assert query_of(lr.request_url).get("state") == st["flow"]["state"], lr.request_url
        assert lr.session_id, "login request lacks session_id"
        st["login_session_id"] = lr.session_id

    def t_accept_login():
        st["login_redirect"] = accept_login(st["login_challenge"])

    def t_login_verifier():
        b = st["browser"]
        st["consent_challenge"] = to_consent(b, st["login_redirect"])
        assert any(n.startswith("oauth2_authentication_session") for n in cookie_names(b)), (
            f"remembered login set no session cookie: {cookie_names(b)}"
        )

    def t_get_consent():
        ch = st["consent_challenge"]
        cr = admin.get_consent_request(ch)
        assert cr.challenge == ch
        assert cr.subject == "alice"
        assert cr.skip is False
        assert cr.client.client_id == client_id
        assert cr.requested_scope.value == SCOPES
        assert cr.requested_access_token_audience.value == []
        assert cr.login_challenge == st["login_challenge"]
        assert cr.login_session_id == st["login_session_id"]
        assert cr.request_url.startswith(f"{public_url}/oauth2/auth?"), cr.request_url

    def t_accept_consent():
        st["consent_redirect"] = accept_consent(st["consent_challenge"])

    def t_consent_verifier():
        q = to_client(st["browser"], st["consent_redirect"], st["flow"])
        assert q.get("code"), q
        assert q.get("scope") == " ".join(SCOPES), q
        st["code"] = q["code"]

    # 4. token exchange + id_token
    def t_exchange():
        r = exchange(st["code"], st["flow"]["verifier"])
        assert r.status_code == 200, f"{r.status_code} {r.text}"
        assert "no-store" in r.headers.get("Cache-Control", ""), r.headers
        body = r.json()
        tok = sdk_parse(body, Oauth2TokenResponse)
        assert tok.token_type == "bearer", tok.token_type
        assert isinstance(body["expires_in"], int) and body["expires_in"] > 0, body
        assert set(tok.scope.split()) == set(SCOPES), tok.scope
        assert tok.access_token and tok.refresh_token and tok.id_token, body
        st["tokens"] = body

    def t_id_token():
        tokens = st["tokens"]
        raw = tokens["id_token"]
        header = json.loads(b64url_decode(raw.split(".")[0]))
        assert header.get("alg") == "RS256", header
        assert header.get("kid"), header
        r = requests.get(f"{public_url}/.well-known/jwks.json", timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.status_code
        keys = jwk.JWKSet.from_json(r.text)
        assert keys.get_key(header["kid"]) is not None, f"kid {header['kid']} not in JWKS"
        verified = jwt.JWT(jwt=raw, key=keys, algs=["RS256"])  # checks signature, exp, nbf
        claims = json.loads(verified.claims)
        assert claims["iss"] == issuer, claims["iss"]
        disco = requests.get(
            f"{public_url}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT
        ).json()
        assert disco["issuer"] == claims["iss"], (disco["issuer"], claims["iss"])
        aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        assert client_id in aud, aud
        assert claims["sub"] == "alice", claims
        assert claims["nonce"] == st["flow"]["nonce"], claims
        at = tokens["access_token"].encode()
        assert claims.get("at_hash") == b64url(hashlib.sha256(at).digest()[:16]), claims
        assert claims.get("email") == "alice@example.com", claims
        assert claims.get("sid") == st["login_session_id"], claims
        for k in ("exp", "iat", "auth_time", "jti", "rat"):
            assert k in claims, f"id_token lacks {k}: {claims}"

    # 5. introspection
    def t_introspect_access():
        i = introspect(st["tokens"]["access_token"])
        assert i.active is True, i
        assert i.sub == "alice" and i.client_id == client_id, i
        assert set(i.scope.split()) == set(SCOPES), i.scope
        assert i.ext == {"role": "admin"}, i.ext
        assert i.token_use == "access_token", i.token_use
        assert i.token_type == "Bearer", i.token_type
        assert i.iss == issuer, i.iss
        assert i.aud == [], i.aud
        assert i.exp > i.iat, i

    def t_introspect_refresh():
        i = introspect(st["tokens"]["refresh_token"])
        assert i.active is True, i
        assert i.token_use == "refresh_token", i.token_use
        assert i.sub == "alice" and i.client_id == client_id, i

    # 6. refresh, rotation and family revocation
    def t_refresh():
        old = st["tokens"]
        new = public_basic.oauth2_token("refresh_token", refresh_token=old["refresh_token"])
        assert new.token_type == "bearer", new.token_type
        assert new.access_token and new.access_token != old["access_token"]
        assert new.refresh_token and new.refresh_token != old["refresh_token"]
        assert new.id_token, "openid granted: refresh must return a new id_token"
        assert set(new.scope.split()) == set(SCOPES), new.scope
        keys = jwk.JWKSet.from_json(
            requests.get(f"{public_url}/.well-known/jwks.json", timeout=HTTP_TIMEOUT).text
        )
        claims = json.loads(jwt.JWT(jwt=new.id_token, key=keys, algs=["RS256"]).claims)
        assert claims["sub"] == "alice" and claims["nonce"] == st["flow"]["nonce"], claims
        at = new.access_token.encode()
        assert claims.get("at_hash") == b64url(hashlib.sha256(at).digest()[:16]), claims
        st["refreshed"] = {"access_token": new.access_token, "refresh_token": new.refresh_token}

    def t_after_refresh():
        old, new = st["tokens"], st["refreshed"]
        assert_inactive(old["access_token"], "access token rotated out by refresh")
        assert_inactive(old["refresh_token"], "refresh token rotated out by refresh")
        i = introspect(new["access_token"])
        assert i.active is True and i.ext == {"role": "admin"}, i

    def t_refresh_reuse():
        r = requests.post(
            token_url, auth=basic,
            data={"grant_type": "refresh_token", "refresh_token": st["tokens"]["refresh_token"]},
            timeout=HTTP_TIMEOUT,
        )
        expect_oauth_error(r, 400, "invalid_grant")
        st["reused"] = True

    def t_family_revoked():
        st["reused"]
        new = st["refreshed"]
        assert_inactive(new["access_token"], "access token of a reused refresh family")
        assert_inactive(new["refresh_token"], "refresh token of a reused refresh family")
        r = requests.post(
            token_url, auth=basic,
            data={"grant_type": "refresh_token", "refresh_token": new["refresh_token"]},
            timeout=HTTP_TIMEOUT,
        )
        expect_oauth_error(r, 400, "invalid_grant")

    # 7. second flow (remembered login and consent) + revocation
    def t_second_flow():
        b = st["browser"]
        flow, ch = start(b)
        lr = admin.get_login_request(ch)
        assert lr.skip is True and lr.subject == "alice", f"remembered login not skipped: {lr}"
        cch = to_consent(b, accept_login(ch))
        cr = admin.get_consent_request(cch)
        assert cr.skip is True, f"remembered consent not skipped: {cr}"
        q = to_client(b, accept_consent(cch), flow)
        r = exchange(q["code"], flow["verifier"])
        assert r.status_code == 200, f"{r.status_code} {r.text}"
        tokens = r.json()
        assert introspect(tokens["access_token"]).active is True
        st["second"] = tokens

    def t_revoke():
        tokens = st["second"]
        r = requests.post(
            f"{public_url}/oauth2/revoke", auth=basic,
            data={"token": tokens["access_token"]}, timeout=HTTP_TIMEOUT,
        )
        assert r.status_code == 200, f"{r.status_code} {r.text}"
        assert_inactive(tokens["access_token"], "revoked access token")
        assert_inactive(tokens["refresh_token"], "refresh token of a revoked grant")

    def t_revoke_sdk_unknown():
        # SDK revoke (Basic auth) of an unknown token: 200, no body.
        _, status, _ = public_basic.revoke_o_auth2_token(
            "not-a-token", _return_http_data_only=False
        )
        assert status == 200, status

    # 8. rejections
    def t_reject_login():
        st["client"]
        b = new_browser()
        flow, ch = start(b)
        r = admin.reject_login_request(
            ch,
            body=RejectRequest(
                error="access_denied",
                error_description="The resource owner denied the request",
                status_code=403,
            ),
        )
        assert query_of(r.redirect_to).get("login_verifier"), r.redirect_to
        q = to_client(b, r.redirect_to, flow)
        assert q.get("error") == "access_denied", q
        assert "code" not in q, q
        # The challenge was used: the admin API now answers 409 for it.
        try:
            admin.get_login_request(ch)
        except ApiException as e:
            assert e.status in (404, 409), f"used login challenge: {e.status}"
        else:
            raise AssertionError("used login challenge still readable")

    def t_reject_consent():
        st["client"]
        b = new_browser()
        flow, ch = start(b)
        cch = to_consent(b, accept_login(ch, remember=False))
        r = admin.reject_consent_request(
            cch, body=RejectRequest(error="access_denied", error_description="no thanks")
        )
        q = to_client(b, r.redirect_to, flow)
        assert q.get("error") == "access_denied", q
        assert "code" not in q, q

    # extra token-endpoint rules
    def t_wrong_verifier():
        st["client"]
        b = new_browser()
        flow, code = full_flow(b)
        r = exchange(code, pkce_pair()[0])
        expect_oauth_error(r, 400, "invalid_grant")

    def t_code_reuse():
        st["client"]
        b = new_browser()
        flow, code = full_flow(b)
        first = exchange(code, flow["verifier"])
        assert first.status_code == 200, f"{first.status_code} {first.text}"
        again = exchange(code, flow["verifier"])
        expect_oauth_error(again, 400, "invalid_grant")
        tokens = first.json()
        assert_inactive(tokens["access_token"], "access token of a reused code")
        assert_inactive(tokens["refresh_token"], "refresh token of a reused code")

    # admin token maintenance
    def t_flush():
        st["client"]
        tokens = tokens_from_full_flow(new_browser())
        _, status, _ = admin.flush_inactive_o_auth2_tokens(
            body=FlushInactiveOAuth2TokensRequest(not_after=datetime.now(timezone.utc)),
            _return_http_data_only=False,
        )
        assert status == 204, status
        # Only tokens older than the access-token TTL go: a fresh one stays.
        assert introspect(tokens["access_token"]).active is True
        st["live"] = tokens

    def t_delete_tokens():
        tokens = st["live"]
        _, status, _ = admin.delete_o_auth2_token(client_id, _return_http_data_only=False)
        assert status == 204, status
        assert_inactive(tokens["access_token"], "access token after delete_o_auth2_token")

    def t_cleanup():
        st["client"]
        admin.delete_o_auth2_client(client_id)

    # ------------------------------------------------------------ sessions
    def logged_in_browser():
        """A fresh browser through a whole remembered flow: (browser, sid, tokens)."""
        b = new_browser()
        flow, ch = start(b)
        sid = admin.get_login_request(ch).session_id
        cch = to_consent(b, accept_login(ch))
        q = to_client(b, accept_consent(cch), flow)
        assert any(n.startswith("oauth2_authentication_session") for n in cookie_names(b)), (
            f"remembered login set no session cookie: {cookie_names(b)}"
        )
        r = exchange(q["code"], flow["verifier"])
        assert r.status_code == 200, f"token exchange: {r.status_code} {r.text}"
        return b, sid, r.json()

    def consent_sessions_of_client(subject):
        data = admin.list_subject_consent_sessions(subject)
        assert isinstance(data, list), type(data)
        for x in data:
            assert isinstance(x, PreviousConsentSession), type(x)
        return [x for x in data if x.consent_request.client.client_id == client_id]

    def t_list_consent_sessions():
        st["second"]  # both flows ran: one given consent, later ones skipped it
        mine = consent_sessions_of_client("alice")
        # Only the first flow's consent was given; later flows skipped consent.
        assert len(mine) == 1, f"expected one consent session for {client_id}: {mine}"
        c = mine[0]
        assert c.consent_request.challenge == st["consent_challenge"], c.consent_request
        assert c.consent_request.subject == "alice", c.consent_request
        assert c.grant_scope.value == SCOPES, c.grant_scope
        assert c.grant_access_token_audience.value == [], c.grant_access_token_audience
        assert c.remember is True and c.remember_for == 3600, c
        assert isinstance(c.handled_at, datetime) and c.handled_at.tzinfo, c.handled_at
        age = datetime.now(timezone.utc) - c.handled_at
        assert abs(age.total_seconds()) < 3600, f"handled_at {c.handled_at} not recent"
        assert c.session.id_token == {"email": "alice@example.com"}, c.session
        assert c.session.access_token == {"role": "admin"}, c.session

    def t_revoke_consent_client():
        st["client"]
        _, _, tokens = logged_in_browser()
        assert introspect(tokens["access_token"]).active is True
        _, status, _ = admin.revoke_consent_sessions(
            "alice", client=client_id, _return_http_data_only=False
        )
        assert status == 204, status
        assert_inactive(tokens["access_token"], "access token of a revoked consent session")
        assert_inactive(tokens["refresh_token"], "refresh token of a revoked consent session")
        assert consent_sessions_of_client("alice") == [], "consent session still listed"
        # Consent is asked for again.
        b = new_browser()
        _, ch = start(b)
        cr = admin.get_consent_request(to_consent(b, accept_login(ch, remember=False)))
        assert cr.skip is False, f"revoked consent still skipped: {cr}"

    def t_revoke_consent_nothing():
        # By client: the SDK sends all=True as "all=True", which Hydra (== "true") and
        # Portcullis both answer with 400, so the SDK's `all` flag is not usable.
        nobody = f"nobody-{uuid.uuid4()}"
        try:
            admin.revoke_consent_sessions(nobody, client=client_id)
        except NotFoundException as e:
            assert e.status == 404, e.status
        else:
            raise AssertionError(f"revoke_consent_sessions for {nobody}: no 404")

    def t_revoke_login_sessions():
        b = st["browser"]  # remembered login from the first flows
        _, ch = start(b)
        assert admin.get_login_request(ch).skip is True, "precondition: login remembered"
        _, status, _ = admin.revoke_authentication_session(
            "alice", _return_http_data_only=False
        )
        assert status == 204, status
        _, ch = start(b)
        lr = admin.get_login_request(ch)
        assert lr.skip is False and lr.subject == "", f"forgotten login still skipped: {lr}"

    # ------------------------------------------------------------ logout
    def logout_challenge(b, **params):
        return ui_challenge(
            b, f"{public_url}/oauth2/sessions/logout", params, logout_url, "logout_challenge"
        )

    def session_cookies(b):
        return {n for n in cookie_names(b) if n.startswith("oauth2_authentication_session")}

    def t_logout_no_session():
        loc = hop(new_browser(), f"{public_url}/oauth2/sessions/logout")
        assert loc == post_logout_url, f"expected post-logout URL, got {loc}"

    def t_logout_to_ui():
        st["client"]
        b, sid, _ = logged_in_browser()
        st["lo_browser"], st["lo_sid"] = b, sid
        st["lo_challenge"] = logout_challenge(b)

    def t_get_logout():
        lr = admin.get_logout_request(st["lo_challenge"])
        assert isinstance(lr, LogoutRequest), type(lr)
        assert lr.subject == "alice", lr
        assert lr.sid == st["lo_sid"], (lr.sid, st["lo_sid"])
        assert lr.rp_initiated is False, lr
        assert without_query(lr.request_url) == f"{public_url}/oauth2/sessions/logout", lr

    def t_accept_logout():
        r = admin.accept_logout_request(st["lo_challenge"])
        assert without_query(r.redirect_to) == f"{public_url}/oauth2/sessions/logout", r
        assert query_of(r.redirect_to).get("logout_verifier"), r.redirect_to
        st["lo_redirect"] = r.redirect_to

    def t_logout_verifier():
        b = st["lo_browser"]
        assert session_cookies(b), "precondition: session cookie present"
        stale = new_browser()  # keeps the old cookie, to see the session end server-side
        stale.cookies.update(b.cookies)
        loc = hop(b, st["lo_redirect"])
        assert loc == post_logout_url, f"expected post-logout URL, got {loc}"
        assert not session_cookies(b), f"session cookie not cleared: {cookie_names(b)}"
        _, ch = start(stale)
        lr = admin.get_login_request(ch)
        assert lr.skip is False, f"logged-out session still skips login: {lr}"

    def t_rp_logout_to_ui():
        st["client"]
        b, sid, tokens = logged_in_browser()
        state = secrets.token_urlsafe(12)
        hint = dict(
            id_token_hint=tokens["id_token"], post_logout_redirect_uri=RP_LOGOUT_URI, state=state
        )
        ch = logout_challenge(b, **hint)
        lr = admin.get_logout_request(ch)
        assert isinstance(lr, LogoutRequest), type(lr)
        assert lr.rp_initiated is True, lr
        assert lr.subject == "alice" and lr.sid == sid, (lr, sid)
        assert query_of(lr.request_url).get("id_token_hint") == tokens["id_token"], lr.request_url
        st["rp"] = (b, ch, hint)

    def t_rp_reject():
        b, ch, _ = st["rp"]
        out, status, _ = admin.reject_logout_request(ch, _return_http_data_only=False)
        assert status == 204 and out is None, (status, out)
        try:
            admin.get_logout_request(ch)
        except NotFoundException as e:
            assert e.status == 404, e.status
        else:
            raise AssertionError("rejected logout request still readable")
        # A rejected logout leaves the login session alone.
        _, lch = start(b)
        assert admin.get_login_request(lch).skip is True, "session ended by a rejected logout"
        st["rp_rejected"] = True

    def t_rp_accept():
        st["rp_rejected"]
        b, _, hint = st["rp"]
        r = admin.accept_logout_request(logout_challenge(b, **hint))
        loc = hop(b, r.redirect_to)
        assert without_query(loc) == RP_LOGOUT_URI, f"expected client post-logout URI, got {loc}"
        assert query_of(loc).get("state") == hint["state"], f"state lost: {loc}"
        assert not session_cookies(b), f"session cookie not cleared: {cookie_names(b)}"

    check("flow: create_o_auth2_client (client_secret_basic, code+refresh)", t_client)
    check("flow: GET /oauth2/auth -> 302 login UI with login_challenge", t_auth_to_login)
    check("flow: get_login_request", t_get_login)
    check("flow: accept_login_request -> redirect_to with login_verifier", t_accept_login)
    check("flow: login_verifier -> 302 consent UI with consent_challenge", t_login_verifier)
    check("flow: get_consent_request", t_get_consent)
    check("flow: accept_consent_request -> redirect_to with consent_verifier", t_accept_consent)
    check("flow: consent_verifier -> 302 client redirect_uri with code/scope/state", t_consent_verifier)
    check("flow: token exchange authorization_code + PKCE (Basic)", t_exchange)
    check("flow: id_token RS256 verified against JWKS (jwcrypto) + claims", t_id_token)
    check("flow: introspect access token (SDK)", t_introspect_access)
    check("flow: introspect refresh token (SDK)", t_introspect_refresh)
    check("flow: refresh_token grant via SDK oauth2_token", t_refresh)
    check("flow: old tokens inactive after refresh, new access token active", t_after_refresh)
    check("flow: reuse of rotated-out refresh token -> 400 invalid_grant", t_refresh_reuse)
    check("flow: refresh reuse revokes the whole family", t_family_revoked)
    check("flow: second flow skips remembered login and consent", t_second_flow)
    check("flow: POST /oauth2/revoke -> 200, tokens inactive", t_revoke)
    check("flow: SDK revoke_o_auth2_token unknown token -> 200", t_revoke_sdk_unknown)
    check("flow: reject_login_request -> client redirect with error+state", t_reject_login)
    check("flow: reject_consent_request -> client redirect with error+state", t_reject_consent)
    check("flow: wrong PKCE code_verifier -> 400 invalid_grant", t_wrong_verifier)
    check("flow: authorization code reuse -> invalid_grant, its tokens revoked", t_code_reuse)
    check("flow: flush_inactive_o_auth2_tokens (SDK) -> 204, fresh token kept", t_flush)
    check("flow: delete_o_auth2_token (SDK) -> 204, client's access tokens gone", t_delete_tokens)
    check("sessions: list_subject_consent_sessions -> PreviousConsentSession", t_list_consent_sessions)
    check("sessions: revoke_consent_sessions(client) -> 204, grant's tokens inactive", t_revoke_consent_client)
    check("sessions: revoke_consent_sessions, nothing to revoke -> NotFound", t_revoke_consent_nothing)
    check("sessions: revoke_authentication_session -> 204, login no longer skipped", t_revoke_login_sessions)
    check("logout: without a session -> 302 post-logout URL", t_logout_no_session)
    check("logout: GET /oauth2/sessions/logout -> 302 logout UI with logout_challenge", t_logout_to_ui)
    check("logout: get_logout_request -> LogoutRequest", t_get_logout)
    check("logout: accept_logout_request -> redirect_to with logout_verifier", t_accept_logout)
    check("logout: logout_verifier -> 302 post-logout URL, session cookie cleared", t_logout_verifier)
    check("logout: RP-initiated (id_token_hint) -> logout_challenge, rp_initiated", t_rp_logout_to_ui)
    check("logout: reject_logout_request -> 204, request gone, session kept", t_rp_reject)
    check("logout: RP-initiated accepted -> post_logout_redirect_uri with state", t_rp_accept)
    check("flow: delete flow client", t_cleanup)
