"""The dashboard's summary tables (dashboards.models: ActivityDay … CustomerPurchase), on PostgreSQL.

Triggers on the activities, the deals and their stage changes, the contracts and receipts, the customers
and their history rows keep them exact: each insert, update
and delete (a service, Django admin, an import, a bulk update or plain SQL) takes the old row's share
out and puts the new row's share in, in the same transaction. `rebuild` recounts everything from the
source tables with set-based SQL (after `bench_seed`, which loads with triggers off, or after the time
zone changed); `install` (re)creates the SQL functions and triggers for settings.TIME_ZONE.

Days are local dates in settings.TIME_ZONE, baked into `dashboards_local_day()`. If the setting no longer
matches the installed functions (changed without `migrate`), `ready()` is False and the selectors count
from the source tables instead, which is slower but never wrong; `migrate` reinstalls and rebuilds.

Durations (sales cycle, time in stage) are kept as histograms: bucket 0 holds durations under an hour,
bucket k ≥ 1 those from 1.1^(k-1) to 1.1^k hours, each with how many and the sum of their seconds.
`histogram_percentile` estimates a percentile from them (see its docstring).

Other databases (SQLite for `make run`) have no triggers: there the selectors always count from the
source tables.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction

# the tables the triggers write, in the order `rebuild` fills them
TABLES = (
    "dashboards_activityday", "dashboards_activitydueday", "dashboards_dealcohortday", "dashboards_dealreachmonth",
    "dashboards_dealwonday", "dashboards_dealopencloseday", "dashboards_cyclemonth", "dashboards_stageexitmonth",
    "dashboards_revenueday", "dashboards_customerday", "dashboards_customertiertotal", "dashboards_customertierchange",
    "dashboards_customerpurchase", "dashboards_dealreachday", "dashboards_stageexitday",
)
SOURCES = ("activities_activity", "opportunities_opportunity", "opportunities_stagechange", "opportunities_stage",
           "contracts_contract", "contracts_paymentreceipt", "leads_customer", "leads_historicalcustomer")
# The row triggers: (trigger, table, function, events); created by `install`, dropped by `uninstall`.
EVERY_WRITE = "INSERT OR UPDATE OR DELETE"
ROW_TRIGGERS = (
    # inserted activities are counted per statement (dashboards_activity_inserted): an import's chunk of
    # thousands is one grouped upsert per summary key instead of three per row
    ("dashboards_activity_trg", "activities_activity", "dashboards_activity_roll", "UPDATE OR DELETE"),
    ("dashboards_opportunity_trg", "opportunities_opportunity", "dashboards_opportunity_roll", EVERY_WRITE),
    ("dashboards_stagechange_trg", "opportunities_stagechange", "dashboards_stagechange_roll", EVERY_WRITE),
    ("dashboards_contract_trg", "contracts_contract", "dashboards_contract_roll", EVERY_WRITE),
    ("dashboards_receipt_trg", "contracts_paymentreceipt", "dashboards_receipt_roll", EVERY_WRITE),
    ("dashboards_customer_trg", "leads_customer", "dashboards_customer_roll", EVERY_WRITE),
    ("dashboards_history_trg", "leads_historicalcustomer", "dashboards_history_roll", EVERY_WRITE),
)
# Bump when the SQL below changes: `migrate` then reinstalls and rebuilds (`ensure`, on post_migrate).
VERSION = 6


def signature(time_zone: str | None = None) -> str:
    return f"{VERSION}:{time_zone or settings.TIME_ZONE}"


def _functions_sql(time_zone: str) -> str:
    ZoneInfo(time_zone)  # a zone name PostgreSQL also knows; raises on anything else (and quotes nothing)
    return f"""
CREATE OR REPLACE FUNCTION dashboards_rollup_signature() RETURNS text AS $$ SELECT '{signature(time_zone)}'::text $$
    LANGUAGE sql IMMUTABLE;
CREATE OR REPLACE FUNCTION dashboards_local_day(ts timestamptz) RETURNS date AS $$
    SELECT (ts AT TIME ZONE '{time_zone}')::date $$ LANGUAGE sql STABLE;
CREATE OR REPLACE FUNCTION dashboards_local_month(ts timestamptz) RETURNS date AS $$
    SELECT date_trunc('month', ts AT TIME ZONE '{time_zone}')::date $$ LANGUAGE sql STABLE;
CREATE OR REPLACE FUNCTION dashboards_bucket(seconds double precision) RETURNS smallint AS $$
    SELECT CASE WHEN seconds < 3600 THEN 0
                ELSE 1 + floor(ln(seconds / 3600.0) / ln(1.1))::integer END::smallint $$
    LANGUAGE sql IMMUTABLE;
"""


TRIGGERS_SQL = """
-- activities ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION dashboards_activity_apply(
    p_owner bigint, p_kind bigint, p_status text, p_planned timestamptz, p_done timestamptz, p_due timestamptz,
    p_sign integer
) RETURNS void AS $$
BEGIN
    IF p_status <> 'cancelled' AND p_planned IS NOT NULL THEN
        INSERT INTO dashboards_activityday AS t (day, owner_id, kind_id, planned, done)
        VALUES (dashboards_local_day(p_planned), p_owner, p_kind, p_sign, 0)
        ON CONFLICT (day, owner_id, kind_id) DO UPDATE SET planned = t.planned + EXCLUDED.planned;
    END IF;
    IF p_status = 'done' AND p_done IS NOT NULL THEN
        INSERT INTO dashboards_activityday AS t (day, owner_id, kind_id, planned, done)
        VALUES (dashboards_local_day(p_done), p_owner, p_kind, 0, p_sign)
        ON CONFLICT (day, owner_id, kind_id) DO UPDATE SET done = t.done + EXCLUDED.done;
    END IF;
    IF p_status = 'planned' AND COALESCE(p_due, p_planned) IS NOT NULL THEN
        INSERT INTO dashboards_activitydueday AS t (day, owner_id, planned)
        VALUES (dashboards_local_day(COALESCE(p_due, p_planned)), p_owner, p_sign)
        ON CONFLICT (day, owner_id) DO UPDATE SET planned = t.planned + EXCLUDED.planned;
    END IF;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION dashboards_activity_roll() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.owner_id = OLD.owner_id AND NEW.kind_id = OLD.kind_id
       AND NEW.status = OLD.status AND NEW.planned_at IS NOT DISTINCT FROM OLD.planned_at
       AND NEW.done_at IS NOT DISTINCT FROM OLD.done_at AND NEW.due_at IS NOT DISTINCT FROM OLD.due_at THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM dashboards_activity_apply(OLD.owner_id, OLD.kind_id, OLD.status, OLD.planned_at, OLD.done_at,
                                          OLD.due_at, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM dashboards_activity_apply(NEW.owner_id, NEW.kind_id, NEW.status, NEW.planned_at, NEW.done_at,
                                          NEW.due_at, 1);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;


CREATE OR REPLACE FUNCTION dashboards_activity_inserted() RETURNS trigger AS $$
BEGIN
    INSERT INTO dashboards_activityday AS t (day, owner_id, kind_id, planned, done)
    SELECT day, owner_id, kind_id, sum(planned), sum(done) FROM (
        SELECT dashboards_local_day(planned_at) AS day, owner_id, kind_id, 1 AS planned, 0 AS done
        FROM new_rows WHERE status <> 'cancelled' AND planned_at IS NOT NULL
        UNION ALL
        SELECT dashboards_local_day(done_at), owner_id, kind_id, 0, 1
        FROM new_rows WHERE status = 'done' AND done_at IS NOT NULL
    ) a GROUP BY 1, 2, 3
    ON CONFLICT (day, owner_id, kind_id) DO UPDATE SET planned = t.planned + EXCLUDED.planned, done = t.done + EXCLUDED.done;
    INSERT INTO dashboards_activitydueday AS t (day, owner_id, planned)
    SELECT dashboards_local_day(COALESCE(due_at, planned_at)), owner_id, count(*)
    FROM new_rows WHERE status = 'planned' AND COALESCE(due_at, planned_at) IS NOT NULL GROUP BY 1, 2
    ON CONFLICT (day, owner_id) DO UPDATE SET planned = t.planned + EXCLUDED.planned;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS dashboards_activity_ins ON activities_activity;
CREATE TRIGGER dashboards_activity_ins AFTER INSERT ON activities_activity
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dashboards_activity_inserted();

-- deals ------------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION dashboards_opportunity_apply(
    p_pipeline bigint, p_owner bigint, p_source text, p_created timestamptz, p_stage bigint,
    p_closed timestamptz, p_amount numeric, p_probability integer, p_expected date, p_sign integer
) RETURNS void AS $$
DECLARE
    v_kind text;
    v_seconds double precision;
BEGIN
    SELECT kind INTO v_kind FROM opportunities_stage WHERE id = p_stage;
    INSERT INTO dashboards_dealcohortday AS t (day, pipeline_id, owner_id, source, created, won, lost)
    VALUES (dashboards_local_day(p_created), p_pipeline, p_owner, p_source, p_sign,
            CASE WHEN v_kind = 'won' THEN p_sign ELSE 0 END, CASE WHEN v_kind = 'lost' THEN p_sign ELSE 0 END)
    ON CONFLICT (day, pipeline_id, owner_id, source) DO UPDATE SET
        created = t.created + EXCLUDED.created, won = t.won + EXCLUDED.won, lost = t.lost + EXCLUDED.lost;
    IF v_kind = 'won' AND p_closed IS NOT NULL THEN
        INSERT INTO dashboards_dealwonday AS t (day, owner_id, won, amount)
        VALUES (dashboards_local_day(p_closed), p_owner, p_sign, p_sign * p_amount)
        ON CONFLICT (day, owner_id) DO UPDATE SET won = t.won + EXCLUDED.won, amount = t.amount + EXCLUDED.amount;
        v_seconds := EXTRACT(EPOCH FROM (p_closed - p_created));
        INSERT INTO dashboards_cyclemonth AS t (month, owner_id, bucket, deals, seconds)
        VALUES (dashboards_local_month(p_closed), p_owner, dashboards_bucket(v_seconds), p_sign,
                p_sign * round(v_seconds)::bigint)
        ON CONFLICT (month, owner_id, bucket) DO UPDATE SET
            deals = t.deals + EXCLUDED.deals, seconds = t.seconds + EXCLUDED.seconds;
    END IF;
    IF p_closed IS NULL AND p_expected IS NOT NULL THEN
        INSERT INTO dashboards_dealopencloseday AS t (day, owner_id, probability, deals, amount)
        VALUES (p_expected, p_owner, p_probability, p_sign, p_sign * p_amount)
        ON CONFLICT (day, owner_id, probability) DO UPDATE SET
            deals = t.deals + EXCLUDED.deals, amount = t.amount + EXCLUDED.amount;
    END IF;
END
$$ LANGUAGE plpgsql;

-- a deal's stage changes, counted under (pipeline, owner, source, creation month) or owner: moved along
-- when the deal changes owner, source, pipeline or creation date
CREATE OR REPLACE FUNCTION dashboards_opportunity_history_apply(
    p_id bigint, p_pipeline bigint, p_owner bigint, p_source text, p_created timestamptz, p_sign integer,
    p_reach boolean, p_exits boolean
) RETURNS void AS $$
BEGIN
    IF p_reach THEN
        INSERT INTO dashboards_dealreachmonth AS t (month, pipeline_id, owner_id, source, stage_id, reached)
        SELECT dashboards_local_month(p_created), p_pipeline, p_owner, p_source, c.to_stage_id, p_sign
        FROM (SELECT DISTINCT to_stage_id FROM opportunities_stagechange WHERE opportunity_id = p_id) c
        ON CONFLICT (month, pipeline_id, owner_id, source, stage_id) DO UPDATE SET reached = t.reached + EXCLUDED.reached;
        INSERT INTO dashboards_dealreachday AS t (day, pipeline_id, owner_id, source, stage_id, reached)
        SELECT dashboards_local_day(p_created), p_pipeline, p_owner, p_source, c.to_stage_id, p_sign
        FROM (SELECT DISTINCT to_stage_id FROM opportunities_stagechange WHERE opportunity_id = p_id) c
        ON CONFLICT (day, pipeline_id, owner_id, source, stage_id) DO UPDATE SET reached = t.reached + EXCLUDED.reached;
    END IF;
    IF p_exits THEN
        INSERT INTO dashboards_stageexitmonth AS t (month, owner_id, stage_id, bucket, moves, seconds)
        SELECT dashboards_local_month(changed_at), p_owner, from_stage_id, dashboards_bucket(seconds_in_previous_stage),
               p_sign * count(*), p_sign * sum(seconds_in_previous_stage)
        FROM opportunities_stagechange
        WHERE opportunity_id = p_id AND from_stage_id IS NOT NULL AND seconds_in_previous_stage IS NOT NULL
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (month, owner_id, stage_id, bucket) DO UPDATE SET
            moves = t.moves + EXCLUDED.moves, seconds = t.seconds + EXCLUDED.seconds;
        INSERT INTO dashboards_stageexitday AS t (day, owner_id, stage_id, bucket, moves, seconds)
        SELECT dashboards_local_day(changed_at), p_owner, from_stage_id, dashboards_bucket(seconds_in_previous_stage),
               p_sign * count(*), p_sign * sum(seconds_in_previous_stage)
        FROM opportunities_stagechange
        WHERE opportunity_id = p_id AND from_stage_id IS NOT NULL AND seconds_in_previous_stage IS NOT NULL
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (day, owner_id, stage_id, bucket) DO UPDATE SET
            moves = t.moves + EXCLUDED.moves, seconds = t.seconds + EXCLUDED.seconds;
    END IF;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION dashboards_opportunity_roll() RETURNS trigger AS $$
DECLARE
    v_reach boolean;
    v_exits boolean;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.owner_id = OLD.owner_id AND NEW.pipeline_id = OLD.pipeline_id
       AND NEW.source = OLD.source AND NEW.stage_id = OLD.stage_id AND NEW.created_at = OLD.created_at
       AND NEW.closed_at IS NOT DISTINCT FROM OLD.closed_at AND NEW.amount = OLD.amount
       AND NEW.probability = OLD.probability AND NEW.expected_close_date IS NOT DISTINCT FROM OLD.expected_close_date THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM dashboards_opportunity_apply(OLD.pipeline_id, OLD.owner_id, OLD.source, OLD.created_at, OLD.stage_id,
                                             OLD.closed_at, OLD.amount, OLD.probability, OLD.expected_close_date, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM dashboards_opportunity_apply(NEW.pipeline_id, NEW.owner_id, NEW.source, NEW.created_at, NEW.stage_id,
                                             NEW.closed_at, NEW.amount, NEW.probability, NEW.expected_close_date, 1);
    END IF;
    IF TG_OP = 'UPDATE' THEN
        v_reach := NEW.owner_id <> OLD.owner_id OR NEW.pipeline_id <> OLD.pipeline_id OR NEW.source <> OLD.source
                   OR dashboards_local_day(NEW.created_at) <> dashboards_local_day(OLD.created_at);
        v_exits := NEW.owner_id <> OLD.owner_id;
        IF v_reach OR v_exits THEN
            PERFORM dashboards_opportunity_history_apply(OLD.id, OLD.pipeline_id, OLD.owner_id, OLD.source,
                                                         OLD.created_at, -1, v_reach, v_exits);
            PERFORM dashboards_opportunity_history_apply(NEW.id, NEW.pipeline_id, NEW.owner_id, NEW.source,
                                                         NEW.created_at, 1, v_reach, v_exits);
        END IF;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;


-- stage changes ----------------------------------------------------------------------------------------
-- A deal reaches a stage with its first change into it and stops reaching it when the last such change is
-- deleted: counted per statement (transition tables), since one statement may insert or delete several of
-- a deal's changes into the same stage (a bulk import, a deal's deletion). For each (deal, stage) the
-- statement touched: its changes into the stage now, and before the statement (now − the statement's
-- net change); the reach moves by one when exactly one of the two is zero. Stage moves lock the deal's
-- row (opportunities.services), so one deal's changes are never written concurrently.
CREATE OR REPLACE FUNCTION dashboards_reach_apply(p_opportunities bigint[], p_stages bigint[], p_deltas integer[])
RETURNS void AS $$
    WITH pairs AS MATERIALIZED (
        SELECT t.opportunity_id, t.stage_id, sum(t.delta)::integer AS delta
        FROM unnest(p_opportunities, p_stages, p_deltas) AS t(opportunity_id, stage_id, delta)
        GROUP BY t.opportunity_id, t.stage_id
    ), counted AS MATERIALIZED (
        -- the deal's changes into the stage now, looked up by the deal alone ("to_stage_id + 0" keeps the
        -- planner off the stage's index, which holds a million rows per stage)
        SELECT p.opportunity_id, p.stage_id, p.delta,
               (SELECT count(*) FROM opportunities_stagechange s
                WHERE s.opportunity_id = p.opportunity_id AND s.to_stage_id + 0 = p.stage_id)::integer AS now_n
        FROM pairs p
    ), moved AS MATERIALIZED (
        SELECT dashboards_local_day(o.created_at) AS day, o.pipeline_id, o.owner_id, o.source, c.stage_id,
               (c.now_n > 0)::integer - (c.now_n - c.delta > 0)::integer AS reached
        FROM counted c JOIN opportunities_opportunity o ON o.id = c.opportunity_id
        WHERE (c.now_n > 0) <> (c.now_n - c.delta > 0)
    ), by_month AS (
        INSERT INTO dashboards_dealreachmonth AS r (month, pipeline_id, owner_id, source, stage_id, reached)
        SELECT date_trunc('month', day)::date, pipeline_id, owner_id, source, stage_id, sum(reached)
        FROM moved GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (month, pipeline_id, owner_id, source, stage_id) DO UPDATE SET reached = r.reached + EXCLUDED.reached
    )
    INSERT INTO dashboards_dealreachday AS r (day, pipeline_id, owner_id, source, stage_id, reached)
    SELECT day, pipeline_id, owner_id, source, stage_id, sum(reached) FROM moved GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (day, pipeline_id, owner_id, source, stage_id) DO UPDATE SET reached = r.reached + EXCLUDED.reached;
$$ LANGUAGE sql;

CREATE OR REPLACE FUNCTION dashboards_stagechange_reach() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM dashboards_reach_apply(array_agg(opportunity_id), array_agg(to_stage_id), array_agg(1)) FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM dashboards_reach_apply(array_agg(opportunity_id), array_agg(to_stage_id), array_agg(-1)) FROM old_rows;
    ELSE
        PERFORM dashboards_reach_apply(array_agg(opportunity_id), array_agg(to_stage_id), array_agg(delta))
        FROM (SELECT opportunity_id, to_stage_id, 1 AS delta FROM new_rows
              UNION ALL SELECT opportunity_id, to_stage_id, -1 FROM old_rows) x;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS dashboards_stagechange_reach_ins ON opportunities_stagechange;
DROP TRIGGER IF EXISTS dashboards_stagechange_reach_upd ON opportunities_stagechange;
DROP TRIGGER IF EXISTS dashboards_stagechange_reach_del ON opportunities_stagechange;
CREATE TRIGGER dashboards_stagechange_reach_ins AFTER INSERT ON opportunities_stagechange
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dashboards_stagechange_reach();
CREATE TRIGGER dashboards_stagechange_reach_upd AFTER UPDATE ON opportunities_stagechange
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION dashboards_stagechange_reach();
CREATE TRIGGER dashboards_stagechange_reach_del AFTER DELETE ON opportunities_stagechange
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dashboards_stagechange_reach();

-- the moves out of a stage, row by row (purely additive)
CREATE OR REPLACE FUNCTION dashboards_stagechange_apply(
    p_opportunity bigint, p_from bigint, p_at timestamptz, p_seconds bigint, p_sign integer
) RETURNS void AS $$
DECLARE
    v_owner bigint;
BEGIN
    IF p_from IS NOT NULL AND p_seconds IS NOT NULL THEN
        SELECT owner_id INTO v_owner FROM opportunities_opportunity WHERE id = p_opportunity;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        INSERT INTO dashboards_stageexitmonth AS t (month, owner_id, stage_id, bucket, moves, seconds)
        VALUES (dashboards_local_month(p_at), v_owner, p_from, dashboards_bucket(p_seconds), p_sign, p_sign * p_seconds)
        ON CONFLICT (month, owner_id, stage_id, bucket) DO UPDATE SET
            moves = t.moves + EXCLUDED.moves, seconds = t.seconds + EXCLUDED.seconds;
        INSERT INTO dashboards_stageexitday AS t (day, owner_id, stage_id, bucket, moves, seconds)
        VALUES (dashboards_local_day(p_at), v_owner, p_from, dashboards_bucket(p_seconds), p_sign, p_sign * p_seconds)
        ON CONFLICT (day, owner_id, stage_id, bucket) DO UPDATE SET
            moves = t.moves + EXCLUDED.moves, seconds = t.seconds + EXCLUDED.seconds;
    END IF;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION dashboards_stagechange_roll() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.opportunity_id = OLD.opportunity_id
       AND NEW.from_stage_id IS NOT DISTINCT FROM OLD.from_stage_id AND NEW.changed_at = OLD.changed_at
       AND NEW.seconds_in_previous_stage IS NOT DISTINCT FROM OLD.seconds_in_previous_stage THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM dashboards_stagechange_apply(OLD.opportunity_id, OLD.from_stage_id, OLD.changed_at,
                                             OLD.seconds_in_previous_stage, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM dashboards_stagechange_apply(NEW.opportunity_id, NEW.from_stage_id, NEW.changed_at,
                                             NEW.seconds_in_previous_stage, 1);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

"""

CUSTOMER_TRIGGERS_SQL = """
-- contracts and receipts: revenue per owner and day; a customer's first and second signed contracts -----
CREATE OR REPLACE FUNCTION dashboards_revenue_add(p_day date, p_owner bigint, p_signed numeric, p_collected numeric)
RETURNS void AS $$
    INSERT INTO dashboards_revenueday AS t (day, owner_id, signed, collected)
    VALUES (p_day, p_owner, p_signed, p_collected)
    ON CONFLICT (day, owner_id) DO UPDATE SET signed = t.signed + EXCLUDED.signed, collected = t.collected + EXCLUDED.collected;
$$ LANGUAGE sql;

CREATE OR REPLACE FUNCTION dashboards_purchase_recount(p_customer bigint) RETURNS void AS $$
DECLARE
    v_dates date[];
BEGIN
    SELECT array_agg(signed_on ORDER BY signed_on) INTO v_dates FROM (
        SELECT signed_on FROM contracts_contract WHERE customer_id = p_customer AND signed_on IS NOT NULL
        ORDER BY signed_on LIMIT 2) c;
    IF v_dates IS NULL THEN
        DELETE FROM dashboards_customerpurchase WHERE customer_id = p_customer;
    ELSE
        INSERT INTO dashboards_customerpurchase AS t (customer_id, owner_id, first_on, second_on)
        SELECT p_customer, owner_id, v_dates[1], v_dates[2] FROM leads_customer WHERE id = p_customer
        ON CONFLICT (customer_id) DO UPDATE SET owner_id = EXCLUDED.owner_id, first_on = EXCLUDED.first_on,
            second_on = EXCLUDED.second_on;
    END IF;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION dashboards_contract_roll() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.owner_id = OLD.owner_id AND NEW.customer_id = OLD.customer_id
       AND NEW.signed_on IS NOT DISTINCT FROM OLD.signed_on AND NEW.total_amount = OLD.total_amount THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.signed_on IS NOT NULL THEN
        PERFORM dashboards_revenue_add(OLD.signed_on, OLD.owner_id, -OLD.total_amount, 0);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.signed_on IS NOT NULL THEN
        PERFORM dashboards_revenue_add(NEW.signed_on, NEW.owner_id, NEW.total_amount, 0);
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.owner_id <> OLD.owner_id THEN  -- the contract's receipts go with it
        PERFORM dashboards_revenue_add(received_on, OLD.owner_id, 0, -sum(amount))
        FROM contracts_paymentreceipt WHERE contract_id = OLD.id GROUP BY received_on;
        PERFORM dashboards_revenue_add(received_on, NEW.owner_id, 0, sum(amount))
        FROM contracts_paymentreceipt WHERE contract_id = NEW.id GROUP BY received_on;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM dashboards_purchase_recount(OLD.customer_id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.customer_id <> OLD.customer_id) THEN
        PERFORM dashboards_purchase_recount(NEW.customer_id);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;


CREATE OR REPLACE FUNCTION dashboards_receipt_roll() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.contract_id = OLD.contract_id AND NEW.received_on = OLD.received_on
       AND NEW.amount = OLD.amount THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM dashboards_revenue_add(OLD.received_on, owner_id, 0, -OLD.amount)
        FROM contracts_contract WHERE id = OLD.contract_id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM dashboards_revenue_add(NEW.received_on, owner_id, 0, NEW.amount)
        FROM contracts_contract WHERE id = NEW.contract_id;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;


-- customers: created per day and owner, tiers now per owner; the owner of their purchases ----------------
CREATE OR REPLACE FUNCTION dashboards_customer_apply(p_owner bigint, p_tier text, p_created timestamptz, p_sign integer)
RETURNS void AS $$
BEGIN
    INSERT INTO dashboards_customerday AS t (day, owner_id, created)
    VALUES (dashboards_local_day(p_created), p_owner, p_sign)
    ON CONFLICT (day, owner_id) DO UPDATE SET created = t.created + EXCLUDED.created;
    INSERT INTO dashboards_customertiertotal AS t (owner_id, tier, customers)
    VALUES (p_owner, p_tier, p_sign)
    ON CONFLICT (owner_id, tier) DO UPDATE SET customers = t.customers + EXCLUDED.customers;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION dashboards_customer_roll() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.owner_id IS NOT DISTINCT FROM OLD.owner_id AND NEW.tier = OLD.tier
       AND NEW.created_at = OLD.created_at THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM dashboards_customer_apply(OLD.owner_id, OLD.tier, OLD.created_at, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM dashboards_customer_apply(NEW.owner_id, NEW.tier, NEW.created_at, 1);
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.owner_id IS DISTINCT FROM OLD.owner_id THEN
        UPDATE dashboards_customerpurchase SET owner_id = NEW.owner_id WHERE customer_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;


-- a customer's tier changes, derived again from all its history rows whenever one is written (a history row
-- may be written out of order, which changes the "previous tier" of the rows after it)
CREATE OR REPLACE FUNCTION dashboards_tier_changes_recount(p_customer bigint) RETURNS void AS $$
    DELETE FROM dashboards_customertierchange WHERE customer_id = p_customer;
    INSERT INTO dashboards_customertierchange (customer_id, changed_at, from_tier, to_tier)
    SELECT id, history_date, previous, tier FROM (
        SELECT id, history_date, tier, lag(tier) OVER (ORDER BY history_date, history_id) AS previous
        FROM leads_historicalcustomer WHERE id = p_customer
    ) h WHERE previous IS DISTINCT FROM tier;
$$ LANGUAGE sql;

CREATE OR REPLACE FUNCTION dashboards_history_roll() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.tier = OLD.tier AND NEW.history_date = OLD.history_date THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM dashboards_tier_changes_recount(OLD.id);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND (TG_OP = 'INSERT' OR NEW.id <> OLD.id) THEN
        PERFORM dashboards_tier_changes_recount(NEW.id);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

"""

DROP_SQL = """
DROP TRIGGER IF EXISTS dashboards_activity_ins ON activities_activity;
DROP FUNCTION IF EXISTS dashboards_activity_inserted();
DROP TRIGGER IF EXISTS dashboards_stagechange_reach_ins ON opportunities_stagechange;
DROP TRIGGER IF EXISTS dashboards_stagechange_reach_upd ON opportunities_stagechange;
DROP TRIGGER IF EXISTS dashboards_stagechange_reach_del ON opportunities_stagechange;
DROP FUNCTION IF EXISTS dashboards_revenue_add(date, bigint, numeric, numeric), dashboards_purchase_recount(bigint),
    dashboards_contract_roll(), dashboards_receipt_roll(), dashboards_customer_apply(bigint, text, timestamptz, integer),
    dashboards_customer_roll(), dashboards_tier_changes_recount(bigint), dashboards_history_roll();
DROP FUNCTION IF EXISTS dashboards_activity_roll(), dashboards_opportunity_roll(), dashboards_stagechange_roll(),
    dashboards_activity_apply(bigint, bigint, text, timestamptz, timestamptz, timestamptz, integer),
    dashboards_opportunity_apply(bigint, bigint, text, timestamptz, bigint, timestamptz, numeric, integer, date, integer),
    dashboards_opportunity_history_apply(bigint, bigint, bigint, text, timestamptz, integer, boolean, boolean),
    dashboards_stagechange_apply(bigint, bigint, timestamptz, bigint, integer), dashboards_stagechange_reach(),
    dashboards_reach_apply(bigint[], bigint[], integer[]),
    dashboards_rollup_signature(), dashboards_local_day(timestamptz), dashboards_local_month(timestamptz),
    dashboards_bucket(double precision);
"""

# Everything recounted from the source tables, set-based (the same definitions as the triggers).
REBUILD_SQL = """
TRUNCATE {tables};
INSERT INTO dashboards_activityday (day, owner_id, kind_id, planned, done)
SELECT day, owner_id, kind_id, sum(planned), sum(done) FROM (
    SELECT dashboards_local_day(planned_at) AS day, owner_id, kind_id, 1 AS planned, 0 AS done
    FROM activities_activity WHERE status <> 'cancelled' AND planned_at IS NOT NULL
    UNION ALL
    SELECT dashboards_local_day(done_at), owner_id, kind_id, 0, 1
    FROM activities_activity WHERE status = 'done' AND done_at IS NOT NULL
) a GROUP BY 1, 2, 3;
INSERT INTO dashboards_activitydueday (day, owner_id, planned)
SELECT dashboards_local_day(COALESCE(due_at, planned_at)), owner_id, count(*)
FROM activities_activity WHERE status = 'planned' AND COALESCE(due_at, planned_at) IS NOT NULL GROUP BY 1, 2;
INSERT INTO dashboards_dealcohortday (day, pipeline_id, owner_id, source, created, won, lost)
SELECT dashboards_local_day(o.created_at), o.pipeline_id, o.owner_id, o.source, count(*),
       count(*) FILTER (WHERE s.kind = 'won'), count(*) FILTER (WHERE s.kind = 'lost')
FROM opportunities_opportunity o JOIN opportunities_stage s ON s.id = o.stage_id GROUP BY 1, 2, 3, 4;
INSERT INTO dashboards_dealwonday (day, owner_id, won, amount)
SELECT dashboards_local_day(o.closed_at), o.owner_id, count(*), sum(o.amount)
FROM opportunities_opportunity o JOIN opportunities_stage s ON s.id = o.stage_id
WHERE s.kind = 'won' AND o.closed_at IS NOT NULL GROUP BY 1, 2;
INSERT INTO dashboards_cyclemonth (month, owner_id, bucket, deals, seconds)
SELECT dashboards_local_month(o.closed_at), o.owner_id,
       dashboards_bucket(EXTRACT(EPOCH FROM (o.closed_at - o.created_at))), count(*),
       sum(round(EXTRACT(EPOCH FROM (o.closed_at - o.created_at)))::bigint)
FROM opportunities_opportunity o JOIN opportunities_stage s ON s.id = o.stage_id
WHERE s.kind = 'won' AND o.closed_at IS NOT NULL GROUP BY 1, 2, 3;
INSERT INTO dashboards_dealopencloseday (day, owner_id, probability, deals, amount)
SELECT expected_close_date, owner_id, probability, count(*), sum(amount)
FROM opportunities_opportunity WHERE closed_at IS NULL AND expected_close_date IS NOT NULL GROUP BY 1, 2, 3;
INSERT INTO dashboards_dealreachday (day, pipeline_id, owner_id, source, stage_id, reached)
SELECT dashboards_local_day(o.created_at), o.pipeline_id, o.owner_id, o.source, r.to_stage_id, count(*)
FROM (SELECT DISTINCT opportunity_id, to_stage_id FROM opportunities_stagechange) r
JOIN opportunities_opportunity o ON o.id = r.opportunity_id GROUP BY 1, 2, 3, 4, 5;
INSERT INTO dashboards_dealreachmonth (month, pipeline_id, owner_id, source, stage_id, reached)
SELECT date_trunc('month', day)::date, pipeline_id, owner_id, source, stage_id, sum(reached)
FROM dashboards_dealreachday GROUP BY 1, 2, 3, 4, 5;
INSERT INTO dashboards_stageexitday (day, owner_id, stage_id, bucket, moves, seconds)
SELECT dashboards_local_day(c.changed_at), o.owner_id, c.from_stage_id, dashboards_bucket(c.seconds_in_previous_stage),
       count(*), sum(c.seconds_in_previous_stage)
FROM opportunities_stagechange c JOIN opportunities_opportunity o ON o.id = c.opportunity_id
WHERE c.from_stage_id IS NOT NULL AND c.seconds_in_previous_stage IS NOT NULL GROUP BY 1, 2, 3, 4;
INSERT INTO dashboards_stageexitmonth (month, owner_id, stage_id, bucket, moves, seconds)
SELECT date_trunc('month', day)::date, owner_id, stage_id, bucket, sum(moves), sum(seconds)
FROM dashboards_stageexitday GROUP BY 1, 2, 3, 4;
INSERT INTO dashboards_revenueday (day, owner_id, signed, collected)
SELECT day, owner_id, sum(signed), sum(collected) FROM (
    SELECT signed_on AS day, owner_id, total_amount AS signed, 0 AS collected
    FROM contracts_contract WHERE signed_on IS NOT NULL
    UNION ALL
    SELECT r.received_on, c.owner_id, 0, r.amount
    FROM contracts_paymentreceipt r JOIN contracts_contract c ON c.id = r.contract_id
) v GROUP BY 1, 2;
INSERT INTO dashboards_customerpurchase (customer_id, owner_id, first_on, second_on)
SELECT c.customer_id, cu.owner_id, c.dates[1], c.dates[2] FROM (
    SELECT customer_id, (array_agg(signed_on ORDER BY signed_on))[1:2] AS dates
    FROM contracts_contract WHERE signed_on IS NOT NULL GROUP BY customer_id
) c JOIN leads_customer cu ON cu.id = c.customer_id;
INSERT INTO dashboards_customerday (day, owner_id, created)
SELECT dashboards_local_day(created_at), owner_id, count(*) FROM leads_customer GROUP BY 1, 2;
INSERT INTO dashboards_customertiertotal (owner_id, tier, customers)
SELECT owner_id, tier, count(*) FROM leads_customer GROUP BY 1, 2;
INSERT INTO dashboards_customertierchange (customer_id, changed_at, from_tier, to_tier)
SELECT id, history_date, previous, tier FROM (
    SELECT id, history_date, tier, lag(tier) OVER (PARTITION BY id ORDER BY history_date, history_id) AS previous
    FROM leads_historicalcustomer
) h WHERE previous IS DISTINCT FROM tier;
"""


def install(conn: Any = None, *, time_zone: str | None = None) -> None:
    """(Re)create the functions for `time_zone` (default settings.TIME_ZONE) and the triggers."""
    conn = conn or connection
    if conn.vendor != "postgresql":
        return
    with conn.cursor() as cursor:
        cursor.execute(_functions_sql(time_zone or settings.TIME_ZONE))
        cursor.execute(TRIGGERS_SQL)
        cursor.execute(CUSTOMER_TRIGGERS_SQL)
        for trigger, table, function, events in ROW_TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
            cursor.execute(f"CREATE TRIGGER {trigger} AFTER {events} ON {table} "
                           f"FOR EACH ROW EXECUTE FUNCTION {function}()")
    _ready_cache.clear()


def uninstall(conn: Any = None) -> None:
    conn = conn or connection
    if conn.vendor == "postgresql":
        with conn.cursor() as cursor:
            for trigger, table, _function, _events in ROW_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
            cursor.execute(DROP_SQL)
    _ready_cache.clear()


def rebuild(conn: Any = None) -> None:
    """Recount every summary table from the source tables, with the source tables locked against writes
    (SHARE mode: reads go on) for the duration."""
    conn = conn or connection
    if conn.vendor != "postgresql":
        return
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {', '.join(SOURCES)} IN SHARE MODE")
        cursor.execute(REBUILD_SQL.format(tables=", ".join(TABLES)))


# the counts and sums of the tables: a row whose are all zero is a key counted down to nothing
VALUE_COLUMNS = frozenset({"planned", "done", "created", "won", "lost", "reached", "amount", "deals", "moves",
                           "seconds", "signed", "collected", "customers"})


def snapshot(conn: Any = None) -> dict[str, set[tuple]]:
    """Every summary table's rows (without their id, and without the keys counted down to nothing), to
    compare the tables the triggers kept with a recount (`dashboards_rollups --check`, the tests)."""
    conn = conn or connection
    result = {}
    with conn.cursor() as cursor:
        for table in TABLES:  # our own table names, never input
            cursor.execute(f"SELECT * FROM {table}")  # nosec B608
            names = [c.name for c in cursor.description]
            keep = [i for i, name in enumerate(names) if name != "id"]
            numbers = [i for i in keep if names[i] in VALUE_COLUMNS]
            result[table] = {tuple(row[i] for i in keep) for row in cursor.fetchall()
                             if not numbers or any(row[i] for i in numbers)}
    return result


def installed_signature(conn: Any = None) -> str | None:
    """The version and time zone the functions were installed for; None when they are not installed."""
    conn = conn or connection
    if conn.vendor != "postgresql":
        return None
    with conn.cursor() as cursor:
        cursor.execute("SELECT to_regprocedure('dashboards_rollup_signature()') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute("SELECT dashboards_rollup_signature()")
        return cursor.fetchone()[0]


_ready_cache: dict[tuple[str, str], tuple[bool, float]] = {}
RECHECK_SECONDS = 60.0


def ready(conn: Any = None) -> bool:
    """Whether the selectors may read the summary tables: PostgreSQL, with the triggers of this VERSION
    installed for the current settings.TIME_ZONE. Looked up once per process, connection and time zone;
    a "no" is looked up again after RECHECK_SECONDS (a worker that started before `migrate` finished
    picks the tables up without a restart)."""
    conn = conn or connection
    if conn.vendor != "postgresql":
        return False
    key = (conn.alias, settings.TIME_ZONE)
    found = _ready_cache.get(key)
    if found is None or (not found[0] and time.monotonic() - found[1] > RECHECK_SECONDS):
        found = (installed_signature(conn) == signature(), time.monotonic())
        _ready_cache[key] = found
    return found[0]


def ensure(conn: Any = None, **kwargs: Any) -> None:
    """After `migrate`: install and rebuild when the functions are missing, older than VERSION or made for
    another time zone (TIME_ZONE changed); nothing otherwise."""
    conn = conn or connection
    if conn.vendor == "postgresql" and installed_signature(conn) != signature():
        install(conn)
        rebuild(conn)


# --- reading the duration histograms ---------------------------------------------------------------------
def histogram_percentile(buckets: Iterable[tuple[int, int, int]], p: float) -> float | None:
    """The `p` percentile (0..1), in seconds, of durations kept as (bucket, count, sum of seconds) rows.

    As PostgreSQL's percentile_cont: the value at position p × (n − 1) of the sorted durations,
    interpolated between the two nearest ranks; each rank's value is estimated by the mean of the bucket it
    falls in. The estimate is exact when a bucket's durations are equal (whole days apart, say) and off by
    less than the bucket's width (10 %) otherwise. None without durations."""
    rows = sorted((b, n, s) for b, n, s in buckets if n > 0)
    total = sum(n for _, n, _ in rows)
    if not total:
        return None
    position = p * (total - 1)
    low, high = math.floor(position), math.ceil(position)

    def value(rank: int) -> float:
        seen = 0
        for _, n, seconds in rows:
            seen += n
            if rank < seen:
                return seconds / n
        return rows[-1][2] / rows[-1][1]

    low_value = value(low)
    return low_value + (position - low) * (value(high) - low_value)
