"""The channels: email in the recipient's language, the team webhook (JSON, WeCom, DingTalk) against a
real local HTTP server, its retries."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.utils import timezone

from notifications import services
from notifications.channels import Message, webhook_payload
from notifications.models import Channel, Delivery, DeliveryStatus, TeamWebhook, WebhookFormat

from .factories import due_reminders


class Robot(BaseHTTPRequestHandler):
    """A chat robot endpoint: answers from `script` (status, JSON body), records what it got."""

    script: list = []
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        length = int(self.headers["Content-Length"])
        Robot.received.append({"path": self.path, "headers": dict(self.headers),
                               "json": json.loads(self.rfile.read(length))})
        status, body = Robot.script.pop(0) if Robot.script else (200, {"errcode": 0, "errmsg": "ok"})
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def robot():
    Robot.script, Robot.received = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Robot)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Robot, f"http://127.0.0.1:{server.server_address[1]}/robot/send?access_token=t"
    server.shutdown()
    server.server_close()


def run_scan(now=None):
    result = services.reminders_scan(now=now)
    for channel in result["channels"]:
        services.deliveries_send(channel=channel, now=now)


@pytest.mark.django_db
class TestEmailLanguage:
    def test_rendered_in_the_recipients_language(self, org):
        """English for a user who chose English, the site default (简体中文) for the others."""
        org.rep_a.language = "en"
        org.rep_a.save()
        now = timezone.now()
        due_reminders([org.rep_a, org.rep_b], due_at=now - timedelta(hours=2))  # late: the note is translated
        run_scan(now)
        english = next(m for m in mail.outbox if m.to == ["rep_a@example.com"])
        chinese = next(m for m in mail.outbox if m.to == ["rep_b@example.com"])
        assert "Open in the CRM" in english.body and "Late: this reminder was due at" in english.body
        assert english.subject.startswith("[Late]")
        assert "在 CRM 中打开" in chinese.body and "Open in the CRM" not in chinese.body
        assert "Late:" not in chinese.body
        html = english.alternatives[0][0]
        assert 'lang="en"' in html and "/customers/" in html
        assert english.extra_headers["Message-ID"].startswith("<crm-reminder-")


@pytest.mark.django_db
class TestWebhook:
    def test_wecom_format_and_retry_after_500(self, org, robot):
        """The robot answers 500: the webhook delivery retries with back-off while in-app and email went
        out; then it delivers the WeCom markdown message once."""
        server, url = robot
        server.script = [(500, {"error": "busy"})]
        TeamWebhook.objects.create(team=org.team_a, url=url, format=WebhookFormat.WECOM)
        now = timezone.now()
        due_reminders([org.rep_a], due_at=now)
        run_scan(now)
        hook = Delivery.objects.get(channel=Channel.WEBHOOK)
        assert (hook.status, hook.attempts, "HTTP 500" in hook.last_error) == (DeliveryStatus.PENDING, 1, True)
        assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 2
        run_scan(now + timedelta(minutes=1))
        hook.refresh_from_db()
        assert hook.status == DeliveryStatus.SENT
        assert len(server.received) == 2
        message = server.received[-1]
        assert message["json"]["msgtype"] == "markdown"
        assert "Call back rep_a" in message["json"]["markdown"]["content"]
        assert message["headers"]["Idempotency-Key"] == hook.idempotency_key
        run_scan(now + timedelta(minutes=5))
        assert len(server.received) == 2

    def test_robot_errcode_is_a_failure(self, org, robot):
        server, url = robot
        server.script = [(200, {"errcode": 310000, "errmsg": "sign not match"})]
        TeamWebhook.objects.create(team=org.team_a, url=url, format=WebhookFormat.DINGTALK, secret="SEC")
        due_reminders([org.rep_a])
        run_scan()
        hook = Delivery.objects.get(channel=Channel.WEBHOOK)
        assert hook.status == DeliveryStatus.PENDING and "310000" in hook.last_error
        query = parse_qs(urlsplit(server.received[0]["path"]).query)
        assert set(query) == {"access_token", "timestamp", "sign"}

    def test_default_hook_for_users_without_a_team_hook(self, org, robot):
        server, url = robot
        TeamWebhook.objects.create(team=None, url=url)
        due_reminders([org.rep_b])
        run_scan()
        assert server.received[0]["json"]["recipient"]["username"] == "rep_b"
        assert server.received[0]["json"]["title"] == "Call back rep_b"

    def test_payload_formats(self, org):
        org.rep_a.phone = "13800000000"
        message = Message(title="Follow up", body="ACME", link="/customers/1/", late=True,
                          due_at=timezone.now() - timedelta(hours=1))
        dingtalk = webhook_payload(hook_format=WebhookFormat.DINGTALK, message=message, user=org.rep_a, key="k")
        assert dingtalk["at"] == {"atMobiles": ["13800000000"], "isAtAll": False}
        assert "@13800000000" in dingtalk["markdown"]["text"] and "/customers/1/" in dingtalk["markdown"]["text"]
        generic = webhook_payload(hook_format=WebhookFormat.JSON, message=message, user=org.rep_a, key="k")
        assert generic["id"] == "k" and generic["late"] is True and generic["link"].endswith("/customers/1/")
