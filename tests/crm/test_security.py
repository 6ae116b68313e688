"""Security headers and production security settings: CSP without inline scripts, no framing,
secure cookies and HSTS (configurable), and templates free of inline scripts and handlers."""

import json
import re
from pathlib import Path

import pytest

from tests.crm.test_settings import PROD_ENV, ROOT, _manage


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part}


@pytest.mark.django_db
class TestHeaders:
    def test_pages_carry_a_csp_without_inline_scripts_or_eval(self, client):
        policy = _policy(client.get("/accounts/login/"))
        assert policy["script-src"] == ["'self'"]
        assert policy["default-src"] == ["'self'"]
        assert policy["object-src"] == ["'none'"]
        assert policy["base-uri"] == ["'self'"]
        assert policy["form-action"] == ["'self'"]
        assert policy["style-src-elem"] == ["'self'"], "<style> blocks and foreign style sheets are refused"
        assert "'unsafe-inline'" not in policy["style-src"]
        for directive, sources in policy.items():
            if directive != "style-src-attr":
                assert "'unsafe-inline'" not in sources, directive
            assert "'unsafe-eval'" not in sources, directive

    def test_csp_also_covers_the_admin_and_the_api_docs(self, client, org):
        client.force_login(org.admin)
        for url in ("/admin/", "/api/docs/"):
            response = client.get(url)
            assert response.status_code == 200, url
            assert _policy(response)["script-src"] == ["'self'"], url

    def test_no_page_can_be_framed(self, client):
        response = client.get("/accounts/login/")
        assert response["X-Frame-Options"] == "DENY"
        assert _policy(response)["frame-ancestors"] == ["'none'"]
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"

    def test_the_session_cookie_is_http_only(self, client, org):
        response = client.post("/accounts/login/", {"username": "rep_a", "password": "crm-demo-2026"})
        assert response.status_code == 302
        assert response.cookies["sessionid"]["httponly"]
        assert response.cookies["sessionid"]["samesite"] == "Lax"

    def test_the_api_docs_load_their_script_from_a_url_not_inline(self, client, org):
        client.force_login(org.admin)
        body = client.get("/api/docs/").content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", body), "inline script in Swagger UI page"


class TestProductionSettings:
    def _settings(self, **env):
        code = (
            "import json; from django.conf import settings as s; print(json.dumps({k: getattr(s, k, None) for k in "
            "['SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', "
            "'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_HSTS_PRELOAD', 'X_FRAME_OPTIONS', 'LOG_FORMAT', "
            "'SESSION_COOKIE_HTTPONLY']}))"
        )
        result = _manage("shell", "-c", code, env={**PROD_ENV, **env})
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    def test_secure_by_default_and_configurable(self):
        defaults = self._settings()
        assert defaults == {
            "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True, "SECURE_SSL_REDIRECT": True,
            "SECURE_HSTS_SECONDS": 31536000, "SECURE_HSTS_INCLUDE_SUBDOMAINS": True, "SECURE_HSTS_PRELOAD": True,
            "X_FRAME_OPTIONS": "DENY", "LOG_FORMAT": "json", "SESSION_COOKIE_HTTPONLY": True,
        }
        changed = self._settings(SECURE_HSTS_SECONDS="3600", SECURE_HSTS_PRELOAD="False", LOG_FORMAT="plain")
        assert (changed["SECURE_HSTS_SECONDS"], changed["SECURE_HSTS_PRELOAD"], changed["LOG_FORMAT"]) == (
            3600, False, "plain")

    def test_an_unknown_log_format_is_refused(self):
        result = _manage("check", env={**PROD_ENV, "LOG_FORMAT": "xml"})
        assert result.returncode != 0
        assert "LOG_FORMAT" in result.stderr


# --- templates: nothing the CSP would refuse ------------------------------------------------------
TEMPLATE_FILES = sorted(
    p for p in ROOT.glob("**/templates/**/*.html") if not {".venv", "node_modules", "var"} & set(p.parts)
)
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=[\"']application/(?:ld\+)?json)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[a-z][^>]*\s(on[a-z]+)\s*=", re.I)
JS_URL = re.compile(r"(?:href|src|action)\s*=\s*[\"']\s*javascript:", re.I)
STYLE_BLOCK = re.compile(r"<style\b", re.I)
HX_ON = re.compile(r"\shx-on(?::|-|\b)", re.I)


def test_there_are_templates_to_check():
    assert any(p.name == "base.html" for p in TEMPLATE_FILES)


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_template_has_nothing_the_csp_refuses(path: Path):
    """No inline <script>, no on*= handler, no javascript: URL, no <style> block, no hx-on (eval).

    Put behaviour in static/<app>/<name>.js (attach it through data- attributes) and styles in a
    static .css file.
    """
    text = path.read_text(encoding="utf-8")
    problems = [
        f"{kind}: {match.group(0)[:80]!r}"
        for kind, pattern in (
            ("inline script", INLINE_SCRIPT), ("event handler attribute", INLINE_HANDLER),
            ("javascript: URL", JS_URL), ("<style> block", STYLE_BLOCK), ("hx-on (needs eval)", HX_ON),
        )
        for match in pattern.finditer(text)
    ]
    assert not problems, problems


@pytest.mark.parametrize(
    "snippet",
    [
        '<script>alert(1)</script>',
        '<select onchange="this.form.submit()">',
        '<a href="javascript:void(0)">',
        '<style>.x{}</style>',
        '<button hx-on:click="x()">',
    ],
)
def test_the_template_check_catches(snippet, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(snippet, encoding="utf-8")
    with pytest.raises(AssertionError):
        test_template_has_nothing_the_csp_refuses(bad)


def test_the_template_check_accepts_external_scripts_and_json_data(tmp_path):
    good = tmp_path / "good.html"
    good.write_text(
        '<script src="/static/x.js"></script><script type="application/json" id="d">{}</script>'
        '<select data-autosubmit><option>1</option></select>',
        encoding="utf-8",
    )
    test_template_has_nothing_the_csp_refuses(good)
