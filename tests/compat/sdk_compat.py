#!/usr/bin/env python3
"""Wire-compatibility check: drive a running Portcullis with the official
ORY Hydra v1.9.2 Python SDK (ory-hydra-client==1.9.2).

Every response is deserialised by the SDK's generated models (with type
checking on), so any schema drift raises and counts as a failure.

The authorization-code + PKCE flow checks live in flow_compat.py; the SDK's
AdminApi plays the login and consent app there.

Usage: sdk_compat.py ADMIN_URL PUBLIC_URL LOGIN_URL CONSENT_URL LOGOUT_URL POST_LOGOUT_URL
(LOGIN_URL / CONSENT_URL / LOGOUT_URL / POST_LOGOUT_URL: the server's urls.login,
urls.consent, urls.logout and urls.post_logout_redirect; nothing needs to listen
there, the challenges and redirects are read from the Location headers.)
"""
import json
import sys
import traceback
import uuid

import ory_hydra_client
from ory_hydra_client.api import admin_api, public_api
from ory_hydra_client.exceptions import ApiException
from ory_hydra_client.model.json_web_key_set_generator_request import (
    JsonWebKeySetGeneratorRequest,
)
from ory_hydra_client.model.o_auth2_client import OAuth2Client
from ory_hydra_client.model.string_slice_pipe_delimiter import (
    StringSlicePipeDelimiter as Strings,
)

import flow_compat

ADMIN_URL, PUBLIC_URL, LOGIN_URL, CONSENT_URL, LOGOUT_URL, POST_LOGOUT_URL = sys.argv[1:7]

admin = admin_api.AdminApi(
    ory_hydra_client.ApiClient(ory_hydra_client.Configuration(host=ADMIN_URL))
)
public = public_api.PublicApi(
    ory_hydra_client.ApiClient(ory_hydra_client.Configuration(host=PUBLIC_URL))
)

passed = 0
failed = 0


def check(name, fn):
    """Run one check; any exception (incl. SDK deserialisation errors) fails it."""
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"ok    {name}")
    except Exception:  # noqa: BLE001 - report everything
        failed += 1
        print(f"FAIL  {name}")
        traceback.print_exc()


def expect_status(status, fn):
    try:
        fn()
    except ApiException as e:
        assert e.status == status, f"expected HTTP {status}, got {e.status}: {e.body}"
        return
    raise AssertionError(f"expected HTTP {status}, call succeeded")


def header(headers, name):
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None


# ---------------------------------------------------------------- health
def t_alive():
    assert admin.is_instance_alive().status == "ok"


def t_ready_public():
    assert public.is_instance_ready().status == "ok"


def t_version():
    # Hydra 1.9.2 answers {"version":""} (a bug, ory/hydra#2337); Portcullis
    # reports its real version.
    v = admin.get_version()
    assert v.version, v


# ---------------------------------------------------------------- clients
CLIENT_ID = f"compat-{uuid.uuid4()}"
OTHER_ID = f"compat-{uuid.uuid4()}"


def t_create_client():
    c = admin.create_o_auth2_client(
        OAuth2Client(
            client_id=CLIENT_ID,
            client_name="compat",
            redirect_uris=Strings(["https://example.com/cb"]),
            grant_types=Strings(["authorization_code", "refresh_token"]),
            response_types=Strings(["code"]),
            scope="openid offline",
        )
    )
    assert c.client_id == CLIENT_ID
    assert c.redirect_uris.value == ["https://example.com/cb"]
    assert c.client_secret, "generated secret must be returned on create"
    admin.create_o_auth2_client(OAuth2Client(client_id=OTHER_ID))


def t_create_duplicate():
    expect_status(409, lambda: admin.create_o_auth2_client(OAuth2Client(client_id=CLIENT_ID)))


def t_get_client():
    c = admin.get_o_auth2_client(CLIENT_ID)
    assert c.client_id == CLIENT_ID
    assert c.scope == "openid offline"
    assert not getattr(c, "client_secret", None), "secret must not be returned on get"


def t_list_clients():
    data, status, headers = admin.list_o_auth2_clients(
        limit=1, offset=0, _return_http_data_only=False
    )
    assert status == 200
    assert len(data) == 1, f"limit=1 returned {len(data)}"
    total = header(headers, "X-Total-Count")
    assert total is not None and int(total) >= 2, f"X-Total-Count={total!r}"
    link = header(headers, "Link")
    assert link and 'rel="next"' in link, f"Link={link!r}"
    data2 = admin.list_o_auth2_clients(limit=1, offset=1)
    assert len(data2) == 1 and data2[0].client_id != data[0].client_id


def t_update_client():
    c = admin.update_o_auth2_client(
        CLIENT_ID,
        OAuth2Client(
            client_id=CLIENT_ID,
            client_name="compat-updated",
            redirect_uris=Strings(["https://example.com/cb2"]),
            grant_types=Strings(["client_credentials"]),
            scope="read",
        ),
    )
    assert c.client_name == "compat-updated"
    assert admin.get_o_auth2_client(CLIENT_ID).redirect_uris.value == [
        "https://example.com/cb2"
    ]


def t_delete_client():
    admin.delete_o_auth2_client(CLIENT_ID)
    admin.delete_o_auth2_client(OTHER_ID)
    # Hydra 1.9.2 answers 401 here (a bug); Portcullis answers 404.
    expect_status(404, lambda: admin.get_o_auth2_client(CLIENT_ID))
    expect_status(404, lambda: admin.delete_o_auth2_client(CLIENT_ID))


# ---------------------------------------------------------------- JWKs
def make_keyset_check(alg):
    set_id = f"compat-{alg.lower()}-{uuid.uuid4().hex[:8]}"
    kid = f"kid-{alg.lower()}"

    def run():
        created = admin.create_json_web_key_set(
            set_id, body=JsonWebKeySetGeneratorRequest(alg=alg, use="sig", kid=kid)
        )
        # asymmetric: private:<kid> + public:<kid>; symmetric: one bare <kid>.
        want = {kid} if alg.startswith("HS") else {f"private:{kid}", f"public:{kid}"}
        assert {k.kid for k in created.keys} == want, created
        for k in created.keys:
            assert k.use == "sig"
            assert k.alg == alg
        got = admin.get_json_web_key_set(set_id)
        assert {k.kid for k in got.keys} == want, got
        one = admin.get_json_web_key(created.keys[0].kid, set_id)
        assert len(one.keys) == 1 and one.keys[0].kid == created.keys[0].kid
        admin.delete_json_web_key_set(set_id)
        expect_status(404, lambda: admin.get_json_web_key_set(set_id))

    return run


# ---------------------------------------------------------------- public discovery
def t_well_known_jwks():
    jwks = public.well_known()
    assert jwks.keys, "public JWKS should contain the ID token verification key"
    for k in jwks.keys:
        assert not getattr(k, "d", None), "private material leaked in public JWKS"


def t_discovery():
    d = public.discover_open_id_configuration()
    assert d.issuer and d.jwks_uri and d.token_endpoint and d.authorization_endpoint


check("is_instance_alive", t_alive)
check("is_instance_ready (public)", t_ready_public)
check("get_version", t_version)
check("create_o_auth2_client", t_create_client)
check("create_o_auth2_client duplicate -> 409", t_create_duplicate)
check("get_o_auth2_client", t_get_client)
check("list_o_auth2_clients limit/offset + headers", t_list_clients)
check("update_o_auth2_client", t_update_client)
check("delete_o_auth2_client, then get 404 / delete 404", t_delete_client)
for alg in ("RS256", "HS256", "ES512"):
    check(f"json_web_key_set {alg} create/get/get-one/delete", make_keyset_check(alg))
check("well_known jwks", t_well_known_jwks)
check("discover_open_id_configuration", t_discovery)
flow_compat.register(
    check, admin, PUBLIC_URL, LOGIN_URL, CONSENT_URL, LOGOUT_URL, POST_LOGOUT_URL
)

print(f"compat: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
