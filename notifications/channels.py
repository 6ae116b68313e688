"""The delivery channels: in-app, email and the team webhook. Each `send_*` raises on failure; the
caller (services.delivery_attempt) records the attempt and schedules the retry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from .models import Delivery, Notification, TeamWebhook, WebhookFormat

WEBHOOK_TIMEOUT = 10


class WebhookError(Exception):
    """The webhook answered with an error (HTTP status or the robot's errcode)."""


@dataclass
class Message:
    title: str
    body: str = ""
    link: str = ""
    html: str = ""  # an optional HTML body for email (already escaped by the source)
    late: bool = False
    due_at: datetime | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def absolute_link(self) -> str:
        if self.link.startswith("/"):
            return settings.SITE_URL.rstrip("/") + self.link
        return self.link


def user_language(user) -> str:
    return getattr(user, "language", "") or settings.LANGUAGE_CODE


def _late_note(message: Message) -> str:
    if not message.late or message.due_at is None:
        return ""
    due = timezone.localtime(message.due_at).strftime("%Y-%m-%d %H:%M")
    return _("Late: this reminder was due at %(due)s.") % {"due": due}


# --- in-app -----------------------------------------------------------------------------------


def send_in_app(*, delivery: Delivery, message: Message, user) -> None:
    Notification.objects.create(
        user=user,
        delivery=delivery,
        verb=delivery.reminder.source[:64],
        title=message.title[:255],
        body=message.body,
        link=message.link[:500],
        late=message.late,
    )


# --- email ------------------------------------------------------------------------------------


def _message_id(delivery: Delivery) -> str:
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip("> ") or "crm.localhost"
    return f"<{delivery.idempotency_key}@{domain}>"


def render_email(*, message: Message, user) -> tuple[str, str, str]:
    """Subject, text and HTML of a reminder email, in the active language."""
    context = {
        "message": message,
        "user": user,
        "late_note": _late_note(message),
        "link": message.absolute_link,
        "preferences_url": settings.SITE_URL.rstrip("/") + "/notifications/preferences/",
    }
    subject = message.title if not message.late else _("[Late] %(title)s") % {"title": message.title}
    text = render_to_string("notifications/email/reminder.txt", context)
    html = render_to_string("notifications/email/reminder.html", context)
    return " ".join(subject.split())[:200], text, html


def send_email(*, delivery: Delivery, message: Message, user) -> None:
    subject, text, html = render_email(message=message, user=user)
    email = EmailMultiAlternatives(
        subject=subject,
        body=text,
        to=[user.email],
        headers={"Message-ID": _message_id(delivery), "X-CRM-Delivery": delivery.idempotency_key},
    )
    email.attach_alternative(html, "text/html")
    email.send(fail_silently=False)


# --- team webhook -----------------------------------------------------------------------------


def webhook_for(user, hooks: dict[int | None, TeamWebhook] | None = None) -> TeamWebhook | None:
    """The enabled webhook of the user's team, else the default one (no team)."""
    if hooks is None:
        hooks = {hook.team_id: hook for hook in TeamWebhook.objects.filter(enabled=True)}
    return hooks.get(user.team_id) or hooks.get(None)


def webhook_payload(*, hook_format: str, message: Message, user, key: str) -> dict:
    """The JSON body for the webhook's format: generic JSON, WeCom or DingTalk group robot."""
    note = _late_note(message)
    link = message.absolute_link
    if hook_format == WebhookFormat.WECOM:
        lines = [f"**{message.title}**", f"> {user.display_name}"]
        if message.body:
            lines.append(message.body)
        if note:
            lines.append(f'<font color="warning">{note}</font>')
        if link:
            lines.append(f"[{_('Open in the CRM')}]({link})")
        return {"msgtype": "markdown", "markdown": {"content": "\n".join(lines)}}
    if hook_format == WebhookFormat.DINGTALK:
        mention = f"@{user.phone}" if user.phone else user.display_name
        lines = [f"#### {message.title}", f"{mention}"]
        if message.body:
            lines.append(message.body)
        if note:
            lines.append(f"**{note}**")
        if link:
            lines.append(f"[{_('Open in the CRM')}]({link})")
        return {
            "msgtype": "markdown",
            "markdown": {"title": message.title, "text": "\n\n".join(lines)},
            "at": {"atMobiles": [user.phone] if user.phone else [], "isAtAll": False},
        }
    return {
        "id": key,
        "source": message.source,
        "title": message.title,
        "body": message.body,
        "link": link,
        "late": message.late,
        "due_at": message.due_at.isoformat() if message.due_at else None,
        "recipient": {"username": user.username, "name": user.display_name, "email": user.email},
    }


def _signed_url(url: str, secret: str) -> str:
    """DingTalk's signing: timestamp and HMAC-SHA256 of "timestamp\\nsecret", base64, in the query."""
    timestamp = str(int(time.time() * 1000))
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest))
    return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={sign}"


def post_json(url: str, payload: dict, *, headers: dict | None = None) -> dict | None:
    """POST JSON; raise WebhookError unless the answer is 2xx (and, for robots, errcode 0)."""
    if urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
        raise WebhookError(f"refused URL scheme: {url!r}")
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        method="POST",
    )
    try:
        # nosec B310: only http(s) URLs reach here (checked above); the URL is admin-configured
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:  # nosec B310
            raw = response.read(65536)
    except urllib.error.HTTPError as exc:
        raise WebhookError(f"HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise WebhookError(str(exc)) from exc
    try:
        answer = json.loads(raw or b"null")
    except ValueError:
        return None
    if isinstance(answer, dict) and answer.get("errcode") not in (None, 0):
        raise WebhookError(f"errcode {answer.get('errcode')}: {answer.get('errmsg', '')}")
    return answer if isinstance(answer, dict) else None


def send_webhook(*, delivery: Delivery, message: Message, user, hook: TeamWebhook | None = None) -> None:
    hook = hook or webhook_for(user)
    if hook is None:
        raise WebhookError("no webhook configured for the user's team")
    payload = webhook_payload(hook_format=hook.format, message=message, user=user, key=delivery.idempotency_key)
    url = _signed_url(hook.url, hook.secret) if hook.format == WebhookFormat.DINGTALK and hook.secret else hook.url
    post_json(url, payload, headers={"Idempotency-Key": delivery.idempotency_key})


SENDERS = {
    "in_app": send_in_app,
    "email": send_email,
    "webhook": send_webhook,
}


def in_language(user):
    return translation.override(user_language(user))
