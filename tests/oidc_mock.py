"""A local OpenID Connect provider for tests of Streamlit's own login (``st.login``).

Runs ``oidc-provider-mock`` (flask/werkzeug) in a thread on a free loopback port, writes the
``secrets.toml`` that points Streamlit at it, and drives a headless browser through its
"Authorize" page. Independent of yuanwen.

Usage::

    with oidc_provider() as provider:
        port = free_port()
        secrets = write_auth_secrets(tmp / "st", provider, port)
        # streamlit run app.py --server.port PORT --server.address 127.0.0.1 --secrets.files SECRETS
        oidc_login(driver, f"http://127.0.0.1:{port}", "editor1", {"roles": ["editor"]})

Everything listens on, and is addressed as, 127.0.0.1: Streamlit refuses the login cookie when
the page's origin differs from the origin of ``redirect_uri``, and the mock derives its issuer
from the Host header it is asked with.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

HOST = "127.0.0.1"
T = TypeVar("T")


class OIDCProvider(NamedTuple):
    """A running provider: its issuer URL and the client credentials to configure (the mock
    accepts any, so these are fresh random strings)."""

    issuer: str
    client_id: str
    client_secret: str


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@contextmanager
def oidc_provider(users: Mapping[str, Mapping[str, Any]] | None = None) -> Iterator[OIDCProvider]:
    """Run the mock provider at ``http://127.0.0.1:PORT`` until the block ends.

    ``users`` maps subject -> claims to preload (shown as one-click buttons on the provider's
    page); :func:`set_user_claims` sets more at any time. Any redirect URI is accepted.
    """
    import authlib.deprecate  # noqa: F401  (puts its own "always" filter first; ours go above it)
    import werkzeug.serving

    with warnings.catch_warnings():  # the mock imports authlib.jose, which Authlib marks deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        import oidc_provider_mock

    class QuietHandler(werkzeug.serving.WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:  # no access log in test output
            pass

    preload = [oidc_provider_mock.User(sub=sub, claims=dict(c)) for sub, c in (users or {}).items()]
    server = werkzeug.serving.make_server(HOST, 0, oidc_provider_mock.app(user_claims=preload),
                                          threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    issuer = f"http://{HOST}:{server.server_port}"
    try:
        with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=10) as r:
            assert json.load(r)["issuer"] == issuer
        yield OIDCProvider(issuer, f"client-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def set_user_claims(issuer: str, subject: str, claims: Mapping[str, Any]) -> None:
    """Replace the claims the provider gives ``subject`` (in the ID token and userinfo).

    Non-standard claims (``roles``, ``clearance``, ...) are always included; standard ones
    (``email``, ``preferred_username``, ...) when their scope is asked for (Streamlit asks for
    ``openid email profile``). A subject never set gets ``{"email": subject}``.
    """
    req = urllib.request.Request(f"{issuer}/users/{quote(subject, safe='')}",
                                 data=json.dumps(dict(claims)).encode(),
                                 headers={"Content-Type": "application/json"}, method="PUT")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 204, r.status


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as a TOML value")


def write_auth_secrets(folder: Path | str, provider: OIDCProvider, redirect_port: int,
                       extra: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """Write ``folder/secrets.toml`` with an ``[auth]`` table for ``provider`` and an app on
    ``http://127.0.0.1:redirect_port``; returns its path (for ``--secrets.files PATH``).

    ``extra`` adds tables (``{"yuanwen.oidc": {"role_claim": "roles"}}`` writes
    ``[yuanwen.oidc]``; a mapping value becomes an inline table); its ``"auth"`` entry adds keys
    to ``[auth]`` itself.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables = dict(extra or {})
    auth = {
        "redirect_uri": f"http://{HOST}:{redirect_port}/oauth2callback",
        "cookie_secret": secrets.token_urlsafe(32),
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
        "server_metadata_url": f"{provider.issuer}/.well-known/openid-configuration",
        **dict(tables.pop("auth", {})),
    }
    lines = ["[auth]", *(f"{k} = {_toml_value(v)}" for k, v in auth.items())]
    for table, values in tables.items():
        lines += ["", f"[{table}]", *(f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in values.items())]
    path = folder / "secrets.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _wait(driver: WebDriver, predicate: Callable[[], T | None], timeout: float, what: str) -> T:
    """The first truthy result of ``predicate`` (retried while the page changes under it)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            result = predicate()
        except WebDriverException:  # element missing or stale
            result = None
        if result:
            return result
        time.sleep(0.2)
    body = driver.find_element(By.TAG_NAME, "body").text[:1000]
    raise AssertionError(f"timed out waiting for {what} at {driver.current_url}; page text: {body}")


def _click_button(driver: WebDriver, text: str, timeout: float) -> None:
    from selenium.webdriver.common.by import By

    _wait(driver, lambda: next((b for b in driver.find_elements(By.TAG_NAME, "button")
                                if b.text.strip() == text), None), timeout, f"the button {text!r}").click()


def _back_on(driver: WebDriver, app_url: str, timeout: float) -> None:
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(app_url))
    _wait(driver, lambda: driver.current_url.startswith(origin) and "/oauth2callback" not in driver.current_url,
          timeout, "the redirect back to the app")


def oidc_login(driver: WebDriver, app_url: str, subject: str, claims: Mapping[str, Any] | None = None, *,
               button_text: str = "Log in", screenshot: Path | str | None = None, timeout: float = 60) -> None:
    """Log in to the app at ``app_url`` through the provider as ``subject``.

    Opens ``app_url``, clicks the button ``button_text`` (which calls ``st.login()``), sets
    ``claims`` for ``subject`` when given, types the subject on the provider's page, clicks
    Authorize and waits until the browser is back on the app. ``screenshot``: where to save
    the provider's page.
    """
    from selenium.webdriver.common.by import By

    driver.get(app_url)
    _click_button(driver, button_text, timeout)
    _wait(driver, lambda: "/oauth2/authorize" in driver.current_url, timeout, "the provider's page")
    if claims is not None:
        parts = urlsplit(driver.current_url)
        set_user_claims(f"{parts.scheme}://{parts.netloc}", subject, claims)
    field = _wait(driver, lambda: driver.find_element(By.NAME, "sub"), timeout, "the subject field")
    field.clear()
    field.send_keys(subject)
    if screenshot:
        driver.save_screenshot(str(screenshot))
    driver.find_element(By.XPATH, "//button[normalize-space()='Authorize']").click()
    _back_on(driver, app_url, timeout)


def oidc_logout(driver: WebDriver, app_url: str, *, button_text: str = "Log out", timeout: float = 60) -> None:
    """Log out through the app's button ``button_text`` (which calls ``st.logout()``).

    Streamlit clears its cookie and sends the browser to the provider's end-session page; this
    clicks "End session" there and waits until the browser is back on the app.
    """
    from selenium.webdriver.common.by import By

    _click_button(driver, button_text, timeout)
    _wait(driver, lambda: "/oauth2/end_session" in driver.current_url, timeout, "the provider's end-session page")
    driver.find_element(By.XPATH, "//button[normalize-space()='End session']").click()
    _back_on(driver, app_url, timeout)
