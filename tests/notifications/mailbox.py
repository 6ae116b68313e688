"""A stand-in for the SMTP server in the worker-kill test: each email becomes a row of the table
test_mail_outbox, written through the worker's own database connection (so inside the delivery's
transaction). MAILBOX_DELAY (seconds) slows each email down so that the kill lands mid-batch."""

import os
import time

from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection

TABLE = "test_mail_outbox"


def create_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id serial PRIMARY KEY, message_id text NOT NULL, "
            "recipient text NOT NULL, subject text NOT NULL)"
        )
        cursor.execute(f"TRUNCATE {TABLE}")


def drop_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")


def sent() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT message_id, recipient FROM {TABLE} ORDER BY id")
        return list(cursor.fetchall())


class DatabaseMailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        delay = float(os.environ.get("MAILBOX_DELAY", "0"))
        with connection.cursor() as cursor:
            for message in email_messages:
                if delay:
                    time.sleep(delay)
                cursor.execute(
                    f"INSERT INTO {TABLE} (message_id, recipient, subject) VALUES (%s, %s, %s)",  # noqa: S608
                    [message.extra_headers.get("Message-ID", ""), ",".join(message.to), message.subject],
                )
        return len(email_messages)
