"""Settings of the real Celery worker started by test_worker.py: the project's, pointed at the test
database (DATABASE_URL from the test) with the recording mail backend instead of SMTP."""

from crm.settings import *  # noqa: F403

EMAIL_BACKEND = "tests.notifications.mailbox.DatabaseMailBackend"
