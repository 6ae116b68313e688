"""The four kinds of file: for each, the per-chunk look-ups (one query per referenced table, as dicts),
the validation of a row, and the bulk write of the valid rows of a chunk.

Every write is a bulk statement per chunk (bulk_create / bulk_update / one UPDATE ... FROM unnest):
no query per row. What the leads services maintain row by row is done here in bulk: normalised phone
and email, `name_key`, `search_text` (recomputed for the customers whose contacts changed), the
`OwnershipChange` row of a new customer, history rows (django-simple-history) attributed to the
importing user; last contact / next follow-up of customers and last activity of deals from imported
activities. The tier (from the rules) and the deals' priority after activities are recomputed by the
follow-up task the run queues at its end.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.utils.translation import gettext as _
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from activities.models import Activity, ActivityKind, ActivityStatus
from leads.importing import _split_tags
from leads.models import Contact, Customer, OwnershipChange, OwnershipKind, Tag, Tier, TierSource
from leads.normalise import name_key, normalise_email, normalise_phone
from leads.services import DEFAULT_CADENCE_DAYS
from opportunities.models import Opportunity, StageChange

from ..columns import ACTIVITIES, CONTACTS, CUSTOMERS, OPPORTUNITIES, squash
from .context import OUTCOME_WORDS, ImportContext
from .history import ImportedDeal, opportunity_import_history
from .values import (
    CellError,
    check_email,
    check_length,
    check_url,
    parse_bool,
    parse_choice,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_int,
)


class UnknownReference(CellError):
    """The row names a record (by external id) that does not exist or that the user cannot see."""


Records = list[tuple[int, dict[str, str]]]


def _refs(records: Records, column: str) -> set[str]:
    return {raw.get(column, "").strip() for _line, raw in records} - {""}


def update_column(table: str, column: str, sql_type: str, pairs: Iterable[tuple[int, Any]]) -> None:
    """SET column = value for many ids in one statement (UPDATE ... FROM unnest)."""
    pairs = list(pairs)
    if not pairs:
        return
    ids, values = zip(*pairs, strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{table}" AS t SET "{column}" = v.value '  # noqa: S608  # nosec B608 - our identifiers, values bound
            f"FROM unnest(%s::bigint[], %s::{sql_type}[]) AS v(id, value) WHERE t.id = v.id",
            [list(ids), list(values)],
        )


def any_key(values: Iterable[str], table: str) -> dict[str, Any]:
    """`external_id = ANY(%s)` with one array parameter, for QuerySet.extra: a chunk's thousands of
    keys in one bound value, not one parameter each (Django's `__in` spends more time preparing those
    than PostgreSQL spends on the query)."""
    return {"where": [f'"{table}"."external_id" = ANY(%s)'], "params": [sorted(values)]}


def _customer_refs(ctx: ImportContext, refs: set[str]) -> dict[str, dict[str, Any]]:
    """Customers the user sees, by external id (others are unknown references)."""
    if not refs:
        return {}
    rows = (
        Customer.objects.visible_to(ctx.by).extra(**any_key(refs, "leads_customer"))
        .values("pk", "external_id", "owner_id", "tier", "last_contacted_at")
    )
    return {r["external_id"]: r for r in rows}


def _customer(ctx: ImportContext, raw: dict[str, str], pre: dict[str, Any]) -> dict[str, Any]:
    ref = raw.get("customer_external_id", "").strip()
    customer = pre["customers"].get(ref)
    if customer is None:
        raise UnknownReference("customer_external_id", _("Unknown customer “%(value)s” (not imported yet, or not yours).") % {"value": ref})
    return customer


def _default_owner(ctx: ImportContext, customer: dict[str, Any]) -> int:
    """An empty owner cell: the customer's owner when the user may assign to them, else the user."""
    return customer["owner_id"] if ctx.in_scope(customer["owner_id"]) else ctx.by.pk


def _existing(model: Any, ctx: ImportContext, keys: set[str], fields: tuple[str, ...] = ()) -> tuple[dict, set[str]]:
    """({external id: row values} of the existing records, {external ids the user may update})."""
    if not keys:
        return {}, set()
    rows = model.objects.extra(**any_key(keys, model._meta.db_table)).values("pk", "external_id", *fields)
    existing = {r["external_id"]: r for r in rows}
    visible = set(model.objects.visible_to(ctx.by).extra(**any_key(existing, model._meta.db_table)).values_list("external_id", flat=True)) if existing else set()
    return existing, visible


def _contact_refs(records: Records) -> dict[str, dict[str, Any]]:
    """{external id: {pk, external_id, customer_id}} of the contacts the chunk's rows name (one query)."""
    refs = _refs(records, "contact_external_id")
    if not refs:
        return {}
    rows = Contact.objects.extra(**any_key(refs, "leads_contact")).values("pk", "external_id", "customer_id")
    return {r["external_id"]: r for r in rows}


# --- customers ----------------------------------------------------------------------------------------
class CustomerKind:
    key = CUSTOMERS
    model = Customer

    def prefetch(self, ctx: ImportContext, records: Records) -> dict[str, Any]:
        existing, visible = _existing(Customer, ctx, _refs(records, "external_id"))
        return {"existing": existing, "visible": visible}

    def similar(self, ctx: ImportContext, records: Records) -> dict[str, list[tuple[int, str, str | None, bool]]]:
        """{"phone:<value>" / "email:<value>" / "name:<key>": [(pk, name, external id, visible)]}: the
        customers already in the CRM with the same normalised phone, email or name as a row of the
        chunk (three indexed queries and one for what the user may see)."""
        wanted = {
            "phone": {p for _l, r in records if (p := normalise_phone(r.get("phone", ""))).startswith("+")},
            "email": {e for _l, r in records if (e := normalise_email(r.get("email", "")))},
            "name_key": {k for _l, r in records if (k := name_key(r.get("name", "")))},
        }
        found: dict[str, list[tuple[int, str, str | None, bool]]] = {}
        rows = []
        for field, values in wanted.items():
            if values:
                rows += [(field, *row) for row in Customer.objects.filter(**{f"{field}__in": values})
                         .values_list(field, "pk", "name", "external_id")[:5000]]
        visible = set(Customer.objects.visible_to(ctx.by).filter(pk__in={r[2] for r in rows}).values_list("pk", flat=True)) if rows else set()
        for field, value, pk, name, external_id in rows:
            found.setdefault(f"{field}:{value}", []).append((pk, name, external_id, pk in visible))
        return found

    def warnings(self, ctx: ImportContext, raw: dict[str, str], pre: dict[str, Any]) -> list[str]:
        """A new row that looks like an existing customer: "like <name> (same phone)", or without the
        name when that customer is outside the user's teams (the preview never shows what a user may
        not see)."""
        reasons: dict[int, tuple[str, bool, list[str]]] = {}
        for lookup, label in ((f"phone:{normalise_phone(raw.get('phone', ''))}", _("same phone")),
                              (f"email:{normalise_email(raw.get('email', ''))}", _("same email")),
                              (f"name_key:{name_key(raw.get('name', ''))}", _("same name"))):
            for pk, name, external_id, visible in pre["similar"].get(lookup, []):
                if external_id and external_id == raw.get("external_id", "").strip():
                    continue
                reasons.setdefault(pk, (name, visible, []))[2].append(str(label))
        messages = []
        for name, visible, why in list(reasons.values())[:3]:
            if visible:
                messages.append(_("Looks like the existing customer “%(name)s” (%(reasons)s).")
                                % {"name": name, "reasons": ", ".join(why)})
            else:
                messages.append(_("Looks like a customer of another team (%(reasons)s).") % {"reasons": ", ".join(why)})
        return messages

    def clean(self, ctx: ImportContext, raw: dict[str, str], pre: dict[str, Any]) -> dict[str, Any]:
        c = ctx.choices
        data: dict[str, Any] = {"name": check_length("name", raw.get("name", ""), 200)}
        for key, limit in (("region", 100), ("address", 255)):
            if raw.get(key):
                data[key] = check_length(key, raw[key], limit)
        for key in ("needs", "requirements"):
            if raw.get(key):
                data[key] = raw[key].strip()
        for key in ("customer_type", "status", "industry", "size"):
            if raw.get(key):
                data[key] = parse_choice(key, raw[key], c[key])
        if raw.get("tier"):
            data["tier"] = parse_choice("tier", raw["tier"], c["tier"])
        if raw.get("website"):
            data["website"] = check_url("website", raw["website"])
        if raw.get("phone"):
            phone = normalise_phone(raw["phone"])
            if not phone.startswith("+"):
                raise CellError("phone", _("“%(value)s” is not a phone number.") % {"value": raw["phone"]})
            data["phone"] = phone[:32]
        if raw.get("email"):
            data["email"] = check_email("email", raw["email"])
        if raw.get("source"):
            source = ctx.sources.get(squash(raw["source"]))
            if source is None:
                raise CellError("source", _("Unknown source channel “%(value)s”.") % {"value": raw["source"]})
            data["source_id"] = source.pk
        if raw.get("owner"):
            data["owner_id"] = ctx.owner("owner", raw["owner"])
        if raw.get("created_at"):
            data["created_at"] = parse_datetime("created_at", raw["created_at"])
        data["tags"] = [t[:50] for t in _split_tags(raw.get("tags", ""))]
        return data

    def write(self, ctx: ImportContext, rows: list[dict[str, Any]], pre: dict[str, Any]) -> None:
        new = [r for r in rows if r["_pk"] is None]
        old = [r for r in rows if r["_pk"] is not None]
        objs = []
        for r in new:
            owner_id = r.get("owner_id")
            created = r.get("created_at") or ctx.now
            customer = Customer(
                external_id=r["_external_id"], name=r["name"], owner_id=owner_id,
                team_id=ctx.user_teams.get(owner_id) if owner_id else ctx.by.team_id,
                created_by=ctx.by, profile_reviewed_at=ctx.now, assigned_at=created if owner_id else None,
                **{k: v for k, v in r.items() if k in {"customer_type", "status", "industry", "size", "region",
                                                         "address", "website", "phone", "email", "source_id",
                                                         "needs", "requirements"}},
            )
            if r.get("tier"):
                customer.tier = r["tier"]
                customer.tier_source = TierSource.MANUAL
                customer.tier_reason = ctx.reason
            customer.phone = normalise_phone(customer.phone)
            customer.email = normalise_email(customer.email)
            customer.name_key = name_key(customer.name)
            customer.search_text = customer.build_search_text(contacts=[])
            customer._import_created = created
            objs.append(customer)
        if objs:
            objs = bulk_create_with_history(objs, Customer, batch_size=2000, default_user=ctx.by,
                                            default_change_reason=ctx.reason)
            # created_at is auto_now_add: bulk_create wrote "now"; put the file's dates back in one statement
            update_column("leads_customer", "created_at", "timestamptz",
                          [(c.pk, c._import_created) for c in objs])
            OwnershipChange.objects.bulk_create([
                OwnershipChange(customer_id=c.pk, kind=OwnershipKind.CREATED, to_owner_id=c.owner_id, by=ctx.by,
                                reason=ctx.reason)
                for c in objs
            ])
        pk_by_external = {c.external_id: c.pk for c in objs}
        if old:
            loaded = Customer.objects.in_bulk([r["_pk"] for r in old])
            contacts: dict[int, list[tuple[str, str, str]]] = {}
            for customer_id, *values in Contact.objects.filter(customer_id__in=list(loaded)).values_list(
                "customer_id", "name", "phone", "email"
            ):
                contacts.setdefault(customer_id, []).append(tuple(values))
            changed, moves = [], []
            for r in old:
                customer = loaded[r["_pk"]]
                pk_by_external[customer.external_id] = customer.pk
                for key in ("name", "customer_type", "status", "industry", "size", "region", "address", "website",
                            "phone", "email", "source_id", "needs", "requirements"):
                    if key in r:
                        setattr(customer, key, r[key])
                if r.get("tier") and r["tier"] != customer.tier:
                    customer.tier, customer.tier_source, customer.tier_reason = r["tier"], TierSource.MANUAL, ctx.reason
                if r.get("owner_id") and r["owner_id"] != customer.owner_id:
                    moves.append(OwnershipChange(customer_id=customer.pk, kind=OwnershipKind.ASSIGNED,
                                                 from_owner_id=customer.owner_id, to_owner_id=r["owner_id"], by=ctx.by,
                                                 reason=ctx.reason))
                    customer.owner_id = r["owner_id"]
                    customer.team_id = ctx.user_teams.get(r["owner_id"])
                    customer.assigned_at = ctx.now
                if r.get("created_at"):
                    customer.created_at = r["created_at"]
                customer.phone = normalise_phone(customer.phone)
                customer.email = normalise_email(customer.email)
                customer.name_key = name_key(customer.name)
                customer.search_text = customer.build_search_text(contacts=contacts.get(customer.pk, []))
                customer.version += 1
                customer.updated_at = ctx.now
                changed.append(customer)
            bulk_update_with_history(
                changed, Customer,
                ["name", "customer_type", "status", "industry", "size", "region", "address", "website", "phone",
                 "email", "source", "needs", "requirements", "tier", "tier_source", "tier_reason", "owner", "team",
                 "assigned_at", "created_at", "name_key", "search_text", "version", "updated_at"],
                batch_size=1000, default_user=ctx.by, default_change_reason=ctx.reason,
            )
            OwnershipChange.objects.bulk_create(moves)
        self._tags(rows, pk_by_external)

    def _tags(self, rows: list[dict[str, Any]], pk_by_external: dict[str, int]) -> None:
        names = sorted({t for r in rows for t in r["tags"]})
        if not names:
            return
        Tag.objects.bulk_create([Tag(name=n) for n in names], ignore_conflicts=True)
        tag_ids = dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))
        through = Customer.tags.through
        through.objects.bulk_create(
            [through(customer_id=pk_by_external[r["_external_id"]], tag_id=tag_ids[t]) for r in rows for t in set(r["tags"])],
            ignore_conflicts=True,
        )


# --- contacts -----------------------------------------------------------------------------------------
class ContactKind:
    key = CONTACTS
    model = Contact

    def prefetch(self, ctx: ImportContext, records: Records) -> dict[str, Any]:
        keys = _refs(records, "external_id")
        existing = {r["external_id"]: r for r in Contact.objects.extra(**any_key(keys, "leads_contact")).values("pk", "external_id", "customer_id")} if keys else {}
        owners = {r["customer_id"] for r in existing.values()}
        seen = set(Customer.objects.visible_to(ctx.by).filter(pk__in=sorted(owners)).values_list("pk", flat=True)) if owners else set()
        visible = {k for k, r in existing.items() if r["customer_id"] in seen}
        return {"existing": existing, "visible": visible, "customers": _customer_refs(ctx, _refs(records, "customer_external_id"))}

    def clean(self, ctx: ImportContext, raw: dict[str, str], pre: dict[str, Any]) -> dict[str, Any]:
        customer = _customer(ctx, raw, pre)
        data: dict[str, Any] = {"customer_id": customer["pk"], "name": check_length("name", raw.get("name", ""), 100)}
        for key, limit in (("title", 100), ("wechat", 64)):
            if raw.get(key):
                data[key] = check_length(key, raw[key], limit)
        if raw.get("phone"):
            data["phone"] = normalise_phone(raw["phone"])[:32]
        if raw.get("email"):
            data["email"] = check_email("email", raw["email"])
        if raw.get("notes"):
            data["notes"] = raw["notes"].strip()
        if raw.get("is_decision_maker"):
            data["is_decision_maker"] = parse_bool("is_decision_maker", raw["is_decision_maker"])
        return data

    FIELDS = ("customer_id", "name", "title", "phone", "email", "wechat", "notes", "is_decision_maker")

    def write(self, ctx: ImportContext, rows: list[dict[str, Any]], pre: dict[str, Any]) -> None:
        new = [Contact(external_id=r["_external_id"], **{k: v for k, v in r.items() if k in self.FIELDS})
               for r in rows if r["_pk"] is None]
        if new:
            bulk_create_with_history(new, Contact, batch_size=2000, default_user=ctx.by, default_change_reason=ctx.reason)
        old = [r for r in rows if r["_pk"] is not None]
        touched = {r["customer_id"] for r in rows} | {pre["existing"][r["_external_id"]]["customer_id"] for r in old}
        if old:
            loaded = Contact.objects.in_bulk([r["_pk"] for r in old])
            for r in old:
                contact = loaded[r["_pk"]]
                for key in self.FIELDS:
                    if key in r:
                        setattr(contact, key, r[key])
                contact.version += 1
            bulk_update_with_history(list(loaded.values()), Contact, [f.replace("_id", "") for f in self.FIELDS] + ["version"],
                                     batch_size=1000, default_user=ctx.by, default_change_reason=ctx.reason)
        refresh_search_text(touched)


def refresh_search_text(customer_ids: set[int]) -> None:
    """The search text of these customers from their names, phones, emails and contacts (two reads,
    one UPDATE), what `leads.models.refresh_search_text` does for one customer."""
    if not customer_ids:
        return
    contacts: dict[int, list] = {}
    for customer_id, *values in Contact.objects.filter(customer_id__in=sorted(customer_ids)).values_list(
        "customer_id", "name", "phone", "email"
    ):
        contacts.setdefault(customer_id, []).append(tuple(values))
    pairs = []
    for pk, name, phone, email in Customer.objects.filter(pk__in=sorted(customer_ids)).values_list("pk", "name", "phone", "email"):
        pairs.append((pk, Customer(name=name, phone=phone, email=email).build_search_text(contacts=contacts.get(pk, []))))
    update_column("leads_customer", "search_text", "text", pairs)


# --- opportunities ------------------------------------------------------------------------------------
class OpportunityKind:
    key = OPPORTUNITIES
    model = Opportunity

    def prefetch(self, ctx: ImportContext, records: Records) -> dict[str, Any]:
        existing, visible = _existing(Opportunity, ctx, _refs(records, "external_id"), ("stage_id",))
        live = set(
            StageChange.objects.filter(opportunity_id__in=[r["pk"] for r in existing.values()], imported=False)
            .values_list("opportunity_id", flat=True).distinct()
        ) if existing else set()
        contacts = _contact_refs(records)
        return {"existing": existing, "visible": visible, "live": live, "contacts": contacts,
                "customers": _customer_refs(ctx, _refs(records, "customer_external_id"))}

    def clean(self, ctx: ImportContext, raw: dict[str, str], pre: dict[str, Any]) -> dict[str, Any]:
        customer = _customer(ctx, raw, pre)
        stage_id = ctx.stages.get(squash(raw.get("stage", "")))
        if stage_id is None:
            raise CellError("stage", _("The stage “%(value)s” is not mapped to a stage of this CRM.") % {"value": raw.get("stage")})
        stage = ctx.stage_rows[stage_id]
        first = ctx.first_stage.get(stage.pipeline_id)
        if first is None:
            raise CellError("stage", _("The pipeline of “%(value)s” has no active open stage.") % {"value": raw.get("stage")})
        outcome = OUTCOME_WORDS.get(squash(raw.get("outcome", "")))
        if outcome is None:
            raise CellError("outcome", _("“%(value)s” is not won, lost or open.") % {"value": raw.get("outcome")})
        if outcome and outcome != stage.kind:
            raise CellError("outcome", _("The outcome “%(outcome)s” does not agree with the stage “%(stage)s”.")
                            % {"outcome": raw.get("outcome"), "stage": stage.name})
        created_at = parse_datetime("created_at", raw.get("created_at", ""))
        close = parse_date("close_date", raw.get("close_date", ""))
        closed_at = None
        fields: dict[str, Any] = {"title": check_length("title", raw.get("title", ""), 200), "customer_id": customer["pk"]}
        if stage.is_open:
            fields["expected_close_date"] = close
        else:
            if close is None:
                raise CellError("close_date", _("A won or lost deal needs its close date."))
            closed_at = parse_datetime("close_date", raw["close_date"])
            if closed_at < created_at:
                raise CellError("close_date", _("The close date is before the created date."))
            fields["expected_close_date"] = close
        amount = parse_decimal("amount", raw.get("amount", ""))
        if amount is not None:
            fields["amount"] = amount
        if raw.get("currency"):
            fields["currency"] = parse_choice("currency", raw["currency"], ctx.choices["currency"])
        probability = parse_int("probability", raw.get("probability", ""), low=0, high=100)
        if stage.is_won:
            probability = 100
        elif stage.is_lost:
            probability = 0
        fields["probability"] = stage.default_probability if probability is None else probability
        if raw.get("source"):
            fields["source"] = parse_choice("source", raw["source"], ctx.choices["opp_source"])
        fields["owner_id"] = (ctx.owner("owner", raw["owner"]) if raw.get("owner") else None) or _default_owner(ctx, customer)
        if raw.get("contact_external_id"):
            contact = pre["contacts"].get(raw["contact_external_id"].strip())
            if contact is None or contact["customer_id"] != customer["pk"]:
                raise UnknownReference("contact_external_id", _("Unknown contact “%(value)s” of this customer.") % {"value": raw["contact_external_id"]})
            fields["contact_id"] = contact["pk"]
        if raw.get("loss_reason"):
            reason = ctx.loss_reasons.get(squash(raw["loss_reason"]))
            if reason is None:
                raise CellError("loss_reason", _("Unknown loss reason “%(value)s”.") % {"value": raw["loss_reason"]})
            fields["loss_reason_id"] = reason
        if raw.get("loss_note"):
            fields["loss_note"] = raw["loss_note"].strip()
        current = pre["existing"].get(raw.get("external_id", "").strip())
        keep = bool(current and current["pk"] in pre["live"])
        if keep and current["stage_id"] != stage.pk:
            raise CellError("stage", _("This deal has moved in this CRM since it was imported: its stage is not overwritten."))
        return {"deal": ImportedDeal(
            external_id="", customer_id=customer["pk"], customer_tier=customer["tier"] or Tier.C,
            customer_last_contacted_at=customer["last_contacted_at"], stage=stage, first_stage=first,
            created_at=created_at, closed_at=closed_at, fields=fields, keep_stage=keep,
        )}

    def write(self, ctx: ImportContext, rows: list[dict[str, Any]], pre: dict[str, Any]) -> None:
        deals = []
        for r in rows:
            deal = r["deal"]
            deal.external_id = r["_external_id"]
            deal.pk = r["_pk"]
            deals.append(deal)
        opportunity_import_history(deals=deals, by=ctx.by, note=ctx.reason)


# --- activities ---------------------------------------------------------------------------------------
class ActivityKindImport:
    key = ACTIVITIES
    model = Activity

    FIELDS = ("kind_id", "subject", "notes", "customer_id", "contact_id", "opportunity_id", "owner_id", "planned_at",
              "done_at", "status", "duration_minutes", "outcome", "next_step")

    def prefetch(self, ctx: ImportContext, records: Records) -> dict[str, Any]:
        existing, visible = _existing(Activity, ctx, _refs(records, "external_id"))
        deal_refs = _refs(records, "opportunity_external_id")
        deals = {r["external_id"]: r for r in Opportunity.objects.visible_to(ctx.by).extra(**any_key(deal_refs, "opportunities_opportunity")).values("pk", "external_id", "customer_id")} if deal_refs else {}
        contacts = _contact_refs(records)
        return {"existing": existing, "visible": visible, "deals": deals, "contacts": contacts,
                "customers": _customer_refs(ctx, _refs(records, "customer_external_id"))}

    def clean(self, ctx: ImportContext, raw: dict[str, str], pre: dict[str, Any]) -> dict[str, Any]:
        customer = _customer(ctx, raw, pre)
        kind_id = ctx.kinds.get(squash(raw.get("kind", "")))
        if kind_id is None:
            raise CellError("kind", _("The kind “%(value)s” is not mapped to an activity kind.") % {"value": raw.get("kind")})
        when = parse_datetime("timestamp", raw.get("timestamp", ""))
        status = parse_choice("status", raw.get("status", ""), ctx.choices["activity_status"], ActivityStatus.DONE)
        data: dict[str, Any] = {
            "customer_id": customer["pk"], "kind_id": kind_id, "status": status,
            "subject": check_length("subject", raw.get("subject", ""), 200) or ctx.kind_names.get(kind_id, "")[:200],
            "done_at": when if status == ActivityStatus.DONE else None,
            "planned_at": None if status == ActivityStatus.DONE else when,
            "outcome": parse_choice("outcome", raw.get("outcome", ""), ctx.choices["outcome"]) if status == ActivityStatus.DONE else "",
            "notes": (raw.get("notes") or "").strip(),
            "next_step": check_length("next_step", raw.get("next_step", ""), 255),
            "duration_minutes": parse_int("duration_minutes", raw.get("duration_minutes", ""), low=1, high=24 * 60),
            "contact_id": None, "opportunity_id": None,
        }
        data["owner_id"] = (ctx.owner("owner", raw["owner"]) if raw.get("owner") else None) or _default_owner(ctx, customer)
        if raw.get("opportunity_external_id"):
            deal = pre["deals"].get(raw["opportunity_external_id"].strip())
            if deal is None:
                raise UnknownReference("opportunity_external_id", _("Unknown opportunity “%(value)s” (not imported yet, or not yours).") % {"value": raw["opportunity_external_id"]})
            if deal["customer_id"] != customer["pk"]:
                raise CellError("opportunity_external_id", _("The opportunity belongs to another customer."))
            data["opportunity_id"] = deal["pk"]
        if raw.get("contact_external_id"):
            contact = pre["contacts"].get(raw["contact_external_id"].strip())
            if contact is None or contact["customer_id"] != customer["pk"]:
                raise UnknownReference("contact_external_id", _("Unknown contact “%(value)s” of this customer.") % {"value": raw["contact_external_id"]})
            data["contact_id"] = contact["pk"]
        return data

    # (column, PostgreSQL type) of the upsert; the rest of the table keeps its defaults (null / unused)
    COLUMNS = (
        ("external_id", "text"), ("kind_id", "bigint"), ("subject", "text"), ("notes", "text"),
        ("customer_id", "bigint"), ("contact_id", "bigint"), ("opportunity_id", "bigint"), ("owner_id", "bigint"),
        ("planned_at", "timestamptz"), ("done_at", "timestamptz"), ("status", "text"), ("duration_minutes", "integer"),
        ("outcome", "text"), ("next_step", "text"), ("created_by_id", "bigint"), ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"), ("version", "integer"),
    )
    KEEP_ON_UPDATE = {"external_id", "created_by_id", "created_at", "version"}

    def write(self, ctx: ImportContext, rows: list[dict[str, Any]], pre: dict[str, Any]) -> None:
        """One INSERT ... SELECT FROM unnest(one array per column) ON CONFLICT (external_id) DO UPDATE
        for new and existing rows alike: a million activities are the bulk of an import, and this is
        several times faster than bulk_create (no model instances, 18 parameters instead of 18 per row,
        and created_at written as the activity's own time instead of auto_now_add's "now")."""
        values: dict[str, list[Any]] = {name: [] for name, _type in self.COLUMNS}
        for r in rows:
            record = {**r, "external_id": r["_external_id"], "created_by_id": ctx.by.pk,
                      "created_at": r["done_at"] or r["planned_at"], "updated_at": ctx.now, "version": 1}
            for name, _type in self.COLUMNS:
                values[name].append(record[name])
        names = ", ".join(f'"{name}"' for name, _type in self.COLUMNS)
        arrays = ", ".join(f"%s::{sql_type}[]" for _name, sql_type in self.COLUMNS)
        updates = ", ".join(f'"{name}" = EXCLUDED."{name}"' for name, _type in self.COLUMNS if name not in self.KEEP_ON_UPDATE)
        with connection.cursor() as cursor:
            cursor.execute(
                f'INSERT INTO "activities_activity" ({names}) SELECT * FROM unnest({arrays}) '  # noqa: S608  # nosec B608 - our identifiers, values bound
                f'ON CONFLICT ("external_id") DO UPDATE SET {updates}, "version" = "activities_activity"."version" + 1',
                [values[name] for name, _type in self.COLUMNS],
            )

    def finish(self, ctx: ImportContext) -> None:
        contacted_rollup()


def contacted_rollup() -> None:
    """What logging a done activity does (leads.services.customer_touch, opportunity_record_activity),
    in two statements at the end of an activities import: each customer's last contact (and next
    follow-up from its tier's cadence) and each deal's last activity move forward to its latest done
    activity, never backwards. Once per import, not per chunk: a customer row is rewritten once
    (its trigram indexes make each rewrite costly), and a resumed run simply does it at its end."""
    from leads.models import FollowUpCadence

    cadence = {**DEFAULT_CADENCE_DAYS, **dict(FollowUpCadence.objects.values_list("tier", "days"))}
    counting = list(ActivityKind.objects.filter(counts_as_contact=True).values_list("pk", flat=True)) or [0]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE leads_customer AS c
               SET last_contacted_at = m.at,
                   next_follow_up_at = m.at + make_interval(days => CASE c.tier WHEN 'A' THEN %s WHEN 'B' THEN %s ELSE %s END)
              FROM (SELECT customer_id, max(done_at) AS at FROM activities_activity
                     WHERE status = 'done' AND kind_id = ANY(%s) GROUP BY customer_id) AS m
             WHERE c.id = m.customer_id AND (c.last_contacted_at IS NULL OR c.last_contacted_at < m.at)
            """,
            [cadence.get("A", 7), cadence.get("B", 14), cadence.get("C", 30), counting],
        )
        cursor.execute(
            """
            UPDATE opportunities_opportunity AS o
               SET last_activity_at = m.at
              FROM (SELECT opportunity_id, max(done_at) AS at FROM activities_activity
                     WHERE status = 'done' AND opportunity_id IS NOT NULL GROUP BY opportunity_id) AS m
             WHERE o.id = m.opportunity_id AND (o.last_activity_at IS NULL OR o.last_activity_at < m.at)
            """
        )


KIND_IMPORTERS = {
    CUSTOMERS: CustomerKind(),
    CONTACTS: ContactKind(),
    OPPORTUNITIES: OpportunityKind(),
    ACTIVITIES: ActivityKindImport(),
}
