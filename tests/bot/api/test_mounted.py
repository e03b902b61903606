"""The API as the web role serves it: off without SUPABASE_URL, on with it, keys over HTTP."""

from __future__ import annotations

import httpx

from bot.assembly import Assembly
from bot.doctor import report_lines
from bot.services import Services
from bot.web import create_app
from tests.bot.api.conftest import sign


async def _get(settings, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    services = Services(settings=settings)
    await services.initialize()
    try:
        app = create_app(services, routers=Assembly(services).web_routers())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.get(path, headers=headers)
    finally:
        await services.shutdown()


async def test_the_api_is_absent_without_supabase(make_settings):
    settings = make_settings(
        supabase_url=None, supabase_jwt_secret="only-a-secret-0123456789abcdef"
    )
    assert (await _get(settings, "/api/v1/openapi.json")).status_code == 404
    assert (await _get(settings, "/api/v1/accounts")).status_code == 404
    lines = "\n".join(report_lines(settings))
    assert "[off] Companion app API (/api/v1): set SUPABASE_URL" in lines
    assert "only-a-secret-0123456789abcdef" not in lines


async def test_the_api_verifies_tokens_with_the_projects_jwks(make_settings, jwks):
    # The project URL is the fake's loopback address, so iss and the JWKS URL both follow it.
    settings = make_settings(supabase_url=jwks.base_url)
    token = sign(jwks.signers[0], iss=jwks.base_url + "/auth/v1")
    answer = await _get(settings, "/api/v1/identity", {"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"workspaces": []}
    assert jwks.hits == 1
    foreign = sign(jwks.signers[0])  # issued for another project URL
    refused = await _get(settings, "/api/v1/identity", {"Authorization": f"Bearer {foreign}"})
    assert refused.status_code == 401
    assert "[on]  Companion app API" in "\n".join(report_lines(settings))
