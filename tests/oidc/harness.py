"""The test OpenID provider (tests/oidc/provider.js, the `oidc-provider` package) run by the suite.

``start_provider`` starts it on a free loopback port and waits for its discovery document;
``sign_in_at_provider`` drives its login and consent pages over HTTP, as a browser would,
and returns the query the provider redirects back with (``code``, ``state``…). Nothing is
skipped: a missing node or an uninstalled provider fails with what to run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

HERE = Path(__file__).resolve().parent
CLIENT_ID = "ecomap"
CLIENT_SECRET = "ecomap-test-secret"
FORM_ACTION = 'action="'
STARTUP_TIMEOUT_S = 120  # node and an RSA key take seconds; much more on a loaded machine


@dataclass(frozen=True)
class OidcTestProvider:
    issuer: str
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET

    def env(self, prefix: str = "ECOMAP_OIDC__") -> dict[str, str]:
        """The service's settings pointing at this provider."""
        return {
            f"{prefix}ISSUER": self.issuer,
            f"{prefix}CLIENT_ID": self.client_id,
            f"{prefix}CLIENT_SECRET": self.client_secret,
        }


def _require_provider() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is missing: the single sign-on tests run a real OpenID provider (tests/oidc, oidc-provider)."
            " Install Node.js 20+ (`scripts/bootstrap.sh --test` does, or `apt-get install nodejs npm`)",
            pytrace=False,
        )
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(
            "the test OpenID provider is not installed: run `scripts/bootstrap.sh --test`"
            " (or `cd tests/oidc && npm ci`)",
            pytrace=False,
        )
    return node


@contextmanager
def start_provider(port: int, redirect_uris: list[str], users: dict[str, dict]) -> Iterator[OidcTestProvider]:
    """Run provider.js on 127.0.0.1:port with one client (these redirect URIs) and these users."""
    node = _require_provider()
    env = {
        **os.environ,
        "OIDC_PORT": str(port),
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_REDIRECT_URIS": ",".join(redirect_uris),
        "OIDC_USERS": json.dumps(users),
    }
    process = subprocess.Popen(
        [node, str(HERE / "provider.js")], cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                pytest.fail(f"the test OpenID provider exited ({process.returncode}):\n{output}", pytrace=False)
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the test OpenID provider did not answer within {STARTUP_TIMEOUT_S} s", pytrace=False)
            time.sleep(0.1)
        yield OidcTestProvider(issuer)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _form_action(page: httpx.Response) -> str:
    text = page.text
    start = text.index(FORM_ACTION) + len(FORM_ACTION)
    return urljoin(str(page.url), text[start : text.index('"', start)])


def sign_in_at_provider(authorization_url: str, login: str, *, consent: bool = True) -> dict[str, str]:
    """Sign in at the provider's pages (any password) and give or refuse consent; the query of
    the redirect back to the client (code, state, iss; or error and error_description)."""
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        response = browser.get(authorization_url)
        for _ in range(10):
            if response.status_code in (302, 303):
                location = urljoin(str(response.url), response.headers["location"])
                if not location.startswith(authorization_url.split("/auth", 1)[0]):
                    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
                response = browser.get(location)
                continue
            assert response.status_code == 200, response.text
            if 'name="login"' in response.text:
                response = browser.post(
                    _form_action(response), data={"prompt": "login", "login": login, "password": "any"}
                )
            elif 'value="consent"' in response.text:
                if consent:
                    response = browser.post(_form_action(response), data={"prompt": "consent"})
                else:
                    abort = response.text.split('href="', 1)[1].split('"', 1)[0]
                    assert "/abort" in abort, response.text
                    response = browser.get(urljoin(str(response.url), abort))
            else:
                raise AssertionError(f"unexpected provider page:\n{response.text[:2000]}")
        raise AssertionError("the provider never redirected back")
