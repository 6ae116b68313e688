from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class RowProgress:
    """The progress bar of a job that processes `total_rows` rows (an import): `processed_rows` of them
    done so far; a finished job with no rows is complete."""

    total_rows: int
    processed_rows: int
    status: str
    DONE_STATUS = "done"

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == self.DONE_STATUS else 0
        return min(100, round(100 * self.processed_rows / self.total_rows))


class SingletonModel(models.Model):
    """A settings table with exactly one row (pk 1), edited in Django admin. `load()` reads it in one
    query and never writes: before an admin saves the row, it returns an unsaved row of the defaults."""

    class Meta:
        abstract = True

    @classmethod
    def load(cls):
        obj = cls.objects.filter(pk=1).first()
        return obj if obj is not None else cls(pk=1)


class IdempotencyKey(models.Model):
    """A POST made with an `Idempotency-Key` header, and the response it produced.

    The unique (user, key) row is inserted in the same transaction as the create, so a concurrent
    repeat waits for the first, then replays its stored response instead of creating a second record.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_uniq")]
        # the nightly clean-up deletes keys older than a day
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
