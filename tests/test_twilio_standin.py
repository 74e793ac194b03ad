"""Self-checks: the official twilio SDK (async client) works unchanged against the stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bridge.standins import TwilioStandin, TwilioWebhookSender

# aiohttp deprecates BasicAuth / auth=, which the SDK's AsyncTwilioHttpClient still uses.
SDK_WARNINGS = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]
pytestmark = SDK_WARNINGS
CUSTOMER = "+14155550100"
OURS = "+14155550199"


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioStandin]:
    async with TwilioStandin() as standin:
        yield standin


async def _client(standin: TwilioStandin, token: str | None = None) -> Client:
    client = Client(standin.account_sid, token or standin.auth_token,
                    http_client=AsyncTwilioHttpClient())
    client.api.base_url = standin.base_url
    return client


@pytest.fixture
async def client(twilio: TwilioStandin) -> AsyncIterator[Client]:
    c = await _client(twilio)
    yield c
    await c.http_client.close()


async def test_sdk_sends_body_media_service_and_template(
    twilio: TwilioStandin, client: Client
) -> None:
    msg = await client.messages.create_async(to=CUSTOMER, from_=OURS, body="Hello there",
                                             status_callback="https://bridge.example/status")
    assert msg.sid.startswith("SM") and len(msg.sid) == 34
    assert (msg.status, msg.to, msg.from_, msg.body) == ("queued", CUSTOMER, OURS, "Hello there")
    assert msg.num_segments == "1" and msg.error_code is None and msg.date_created is not None
    urls = ["https://cdn.example/a.jpg", "https://cdn.example/b.png"]
    mms = await client.messages.create_async(to=CUSTOMER, from_=OURS, media_url=urls)
    assert mms.sid.startswith("MM") and mms.num_media == "2"
    svc = await client.messages.create_async(to="whatsapp:" + CUSTOMER, messaging_service_sid=(
        "MG" + "0" * 32), content_sid="HX" + "1" * 32, content_variables='{"1": "Ann"}')
    assert svc.status == "accepted" and svc.messaging_service_sid == "MG" + "0" * 32
    calls = await twilio.wait_for("messages.create", 3)
    assert calls[0].params["StatusCallback"] == "https://bridge.example/status"
    assert calls[1].params["MediaUrl"] == urls
    assert calls[2].params["ContentVariables"] == '{"1": "Ann"}'
    assert [s["sid"] for s in twilio.sent] == [msg.sid, mms.sid, svc.sid]
    assert twilio.sent[1]["media_url"] == urls


async def test_segments_switch_to_ucs2_on_one_emoji(client: Client) -> None:
    msg = await client.messages.create_async(to=CUSTOMER, from_=OURS, body="é" * 100)
    assert msg.num_segments == "1"  # GSM-7: 100 <= 160
    msg = await client.messages.create_async(to=CUSTOMER, from_=OURS, body="é" * 100 + "😀")
    assert msg.num_segments == "2"  # UCS-2: 102 UTF-16 units > 70


async def test_validation_and_auth_errors(twilio: TwilioStandin, client: Client) -> None:
    with pytest.raises(TwilioRestException) as err:
        await client.messages.create_async(to=CUSTOMER, from_=OURS)
    assert (err.value.status, err.value.code) == (400, 21602)
    bad = await _client(twilio, token="wrong")
    try:
        with pytest.raises(TwilioRestException) as err:
            await bad.messages.create_async(to=CUSTOMER, from_=OURS, body="x")
    finally:
        await bad.http_client.close()
    assert (err.value.status, err.value.code) == (401, 20003)
    assert "Authenticate" in err.value.msg
    assert len(twilio.calls_to("messages.create", ok_only=False)) == 2 and not twilio.sent


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (400, 21610), (400, 63016)])
async def test_injected_failures(twilio: TwilioStandin, client: Client, status: int,
                                 code: int) -> None:
    twilio.fail_with_code(code, status=status)
    with pytest.raises(TwilioRestException) as err:
        await client.messages.create_async(to=CUSTOMER, from_=OURS, body="x")
    assert (err.value.status, err.value.code) == (status, code)
    await client.messages.create_async(to=CUSTOMER, from_=OURS, body="x")  # next one passes
    assert len(twilio.sent) == 1


async def test_media_redirects_to_cdn(twilio: TwilioStandin,
                                      session: aiohttp.ClientSession) -> None:
    url = twilio.add_media(b"\x89PNG-bytes", "image/png")
    assert f"/Accounts/{twilio.account_sid}/Messages/MM" in url and "/Media/ME" in url
    async with session.get(url) as resp:
        assert resp.status == 401 and (await resp.json())["code"] == 20003
    auth = {"Authorization": aiohttp.encode_basic_auth(twilio.account_sid, twilio.auth_token)}
    async with session.get(url, headers=auth, allow_redirects=False) as resp:
        assert resp.status == 302 and "/cdn/" in resp.headers["Location"]
        cdn = resp.headers["Location"]
    async with session.get(url, headers=auth) as resp:
        assert resp.status == 200 and resp.content_type == "image/png"
        assert await resp.read() == b"\x89PNG-bytes"
    async with session.get(cdn) as resp:  # the CDN itself needs no auth
        assert resp.status == 200
    assert [d["kind"] for d in twilio.downloads] == ["media", "media", "media", "cdn", "cdn"]


async def test_webhook_sender_signs_like_twilio(session: aiohttp.ClientSession) -> None:
    token, public = "hooktoken", "https://bridge.example.com"
    got: list[tuple[dict[str, str], dict[str, str], bool]] = []

    async def hook(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        sig = request.headers.get("X-Twilio-Signature", "")
        ok = RequestValidator(token).validate(public + request.path, form, sig)
        got.append((form, dict(request.headers), ok))
        return web.Response(text="<Response/>", content_type="text/xml", status=200 if ok else 403)

    app = web.Application()
    app.router.add_post("/twilio/{kind}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    target = f"http://127.0.0.1:{runner.addresses[0][1]}"  # behind a "proxy": URLs differ
    try:
        sender = TwilioWebhookSender(target, token, session, public_url=public)
        sms = sender.sms(from_=CUSTOMER, body="Where is order 123?",
                         media=[("https://x/Media/ME1", "image/jpeg")])
        assert sms["MessageSid"].startswith("MM") and sms["NumMedia"] == "1"
        assert (await sender.post(sms, path="/twilio/sms"))[0] == 200
        wa = sender.whatsapp(from_=CUSTOMER, body="Box damaged", profile_name="Ann")
        assert wa["From"] == "whatsapp:" + CUSTOMER and wa["WaId"] == CUSTOMER[1:]
        assert (await sender.post(wa, path="/twilio/wa", extra={"NewField": "1"}))[0] == 200
        st = sender.status(message_sid="SM" + "a" * 32, status="undelivered", to=CUSTOMER,
                           error_code=30003)
        assert (await sender.post(st, path="/twilio/status"))[0] == 200
        assert (await sender.post(st, path="/twilio/status", token="nope"))[0] == 403
        assert (await sender.post(st, path="/twilio/status", sign=False))[0] == 403
        assert (await sender.post(st, path="/twilio/status", raw_body=b"%%zz&&="))[0] == 403
    finally:
        await runner.cleanup()
    assert got[1][0]["NewField"] == "1" and got[2][0]["ErrorCode"] == "30003"
    assert got[0][0]["MediaUrl0"] == "https://x/Media/ME1"
    assert all(h["I-Twilio-Idempotency-Token"] for _, h, _ in got)
