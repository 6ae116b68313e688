"""The load scenario of issue 10: reps browse lists and the board, open customers, log activities and move
deals; managers watch the team dashboard and the team's lists.

Run it with `make load` (scripts/load.sh starts gunicorn on loopback and prints the summary), or by hand:

    LOAD_REPS=rep1,rep2 LOAD_MANAGERS=manager1 .venv/bin/locust -f scripts/load/locustfile.py \
        --headless -u 4 -r 2 -t 30s --host http://127.0.0.1:8000

Every request is named "<kind>: <page>" where kind is `read`, `write` or `login`, so that locust's
per-endpoint table groups them and the summary (written to LOAD_SUMMARY as JSON at the end, printed by
scripts/load.sh) gives the 95th percentile of reads and of writes separately. Logging in (one
password hash per simulated user) is reported on its own, not as a read or a write.

Environment:
- LOAD_REPS, LOAD_MANAGERS: comma-separated usernames (default: the demo logins). Each simulated
  user takes the next login of its kind, so 50 users spread over the seeded reps and managers.
- LOAD_PASSWORD: their password (default: the demo password).
- LOAD_WAIT_MIN, LOAD_WAIT_MAX: think time between two tasks of one user, seconds (default 5 and 15: a
  person reads the page before the next click; a task is one to five requests).
- LOAD_SUMMARY: path of the JSON summary (optional).
- LOAD_ONCE=1: each user runs each of its tasks once, in order, and locust quits when every user is
  done (the smoke test in tests/crm/test_load.py).

A move or a logged activity counts as a failure only when the app answers other than the scenario
expects: the scenario reads the deal's page first and only asks for a move the page offers.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import threading
import time
import uuid
from collections import defaultdict
from html import unescape

import gevent
from locust import FastHttpUser, between, events, task
from locust.exception import StopUser

READ, WRITE, LOGIN = "read", "write", "login"
PASSWORD = os.environ.get("LOAD_PASSWORD", "crm-demo-2026")
REPS = [name for name in os.environ.get("LOAD_REPS", "rep1,rep2,rep3,rep4,rep5,rep6").split(",") if name]
MANAGERS = [name for name in os.environ.get("LOAD_MANAGERS", "manager1,manager2").split(",") if name]
WAIT = between(float(os.environ.get("LOAD_WAIT_MIN", "5")), float(os.environ.get("LOAD_WAIT_MAX", "15")))
SEARCH_TERMS = ["公司", "科技", "贸易", "有限", "1", "2", "a", "e"]
CUSTOMER_SORTS = ["updated", "name", "follow_up", "contacted", "created"]
ONCE = os.environ.get("LOAD_ONCE") == "1"

_logins = {"rep": itertools.cycle(REPS), "manager": itertools.cycle(MANAGERS)}
_logins_lock = threading.Lock()

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CUSTOMER_LINK = re.compile(r'href="/customers/(\d+)/"')
PANEL = re.compile(r'hx-get="([^"]+)" hx-trigger="load"')
IDEMPOTENCY_KEY = re.compile(r'name="idempotency_key" value="([0-9a-f]+)"')
KIND_SELECT = re.compile(r'<select name="kind"[^>]*>(.*?)</select>', re.S)
OPTION_VALUE = re.compile(r'<option value="(\d+)"')
BOARD_COLUMN = re.compile(r'class="opp-cards[^"]*" data-stage="(\d+)" data-kind="(\w+)"')
BOARD_CARD = re.compile(r'id="card-(\d+)" data-id="\d+" data-stage="(\d+)"')
ENABLED_ACTION = re.compile(r'type="submit" data-action="(advance)"|type="button" data-bs-toggle="collapse" '
                            r'data-bs-target="#form-(move_back)"')
MOVE_BACK_SELECT = re.compile(r'<select name="to_stage"[^>]*>(.*?)</select>', re.S)
CRITERIA_FORM = re.compile(r'<form[^>]*id="criteria-form">(.*?)</form>', re.S)
INPUT_NAME = re.compile(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"')
FROM_STAGE = re.compile(r'name="from_stage" value="(\d+)"')


def next_login(kind: str) -> str:
    with _logins_lock:
        return next(_logins[kind])


# --- the summary: read and write percentiles over every request of the run ---------------------------
class Summary:
    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.failures: dict[str, int] = defaultdict(int)
        self.failure_samples: list[str] = []
        self.started = time.monotonic()
        self.logged_in = 0

    def user_logged_in(self, target: int) -> None:
        """The figures cover the steady state: reads and writes from the moment every user has logged
        in (the log-in storm of the ramp-up, one password hash each, is reported under `login`)."""
        self.logged_in += 1
        if self.logged_in == target and not ONCE:
            for name in [name for name in self.times if not name.startswith(LOGIN)]:
                del self.times[name]
            self.started = time.monotonic()

    def record(self, name: str, response_time: float, exception) -> None:
        self.times[name].append(response_time)
        if exception is not None:
            self.failures[name] += 1
            if len(self.failure_samples) < 20:
                self.failure_samples.append(f"{name}: {exception}")

    @staticmethod
    def figures(values: list[float], failures: int) -> dict:
        ordered = sorted(values)

        def pct(p: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))], 1) if ordered else None

        return {"requests": len(ordered), "failures": failures, "p50_ms": pct(50), "p95_ms": pct(95),
                "max_ms": round(ordered[-1], 1) if ordered else None}

    def as_dict(self) -> dict:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        total = sum(len(v) for v in self.times.values())
        steady = sum(len(v) for name, v in self.times.items() if not name.startswith(LOGIN))
        result = {"duration_s": round(elapsed, 1), "requests": total, "rps": round(steady / elapsed, 2),
                  "errors": sum(self.failures.values()), "failure_samples": self.failure_samples}
        for kind in (READ, WRITE, LOGIN):
            names = [name for name in self.times if name.split(":", 1)[0] == kind]
            result[kind] = self.figures([t for name in names for t in self.times[name]],
                                        sum(self.failures[name] for name in names))
        result["endpoints"] = {
            name: {**self.figures(self.times[name], self.failures[name]),
                   "rps": round(len(self.times[name]) / elapsed, 2)}
            for name in sorted(self.times)
        }
        return result


summary = Summary()


@events.test_start.add_listener
def _reset(environment, **kwargs):
    summary.__init__()


@events.request.add_listener
def _record(request_type, name, response_time, response_length, exception=None, **kwargs):
    summary.record(name, response_time, exception)


@events.quitting.add_listener
def _write_summary(environment, **kwargs):
    data = summary.as_dict()
    path = os.environ.get("LOAD_SUMMARY")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False)
    if data["errors"]:
        environment.process_exit_code = 1


# --- the users -------------------------------------------------------------------------------------------
_done_users = 0


class CrmUser(FastHttpUser):
    abstract = True
    wait_time = WAIT
    role = "rep"
    once: tuple[str, ...] = ()  # the task sequence of LOAD_ONCE=1

    def on_start(self) -> None:
        self.username = next_login(self.role)
        self.customer_ids: list[int] = []
        self.login()

    def run_once(self) -> None:
        """LOAD_ONCE=1: every task once, then stop; the last user to finish ends the run."""
        global _done_users
        for name in self.once:
            getattr(self, name)()
        _done_users += 1
        runner = self.environment.runner
        if runner is not None and _done_users >= runner.target_user_count:
            gevent.spawn_later(0.5, runner.quit)
        raise StopUser()

    def csrf(self) -> str:
        for cookie in self.client.cookiejar:
            if cookie.name == "csrftoken":
                return cookie.value
        return ""

    def login(self) -> None:
        self.authenticated = False
        with self.client.get("/accounts/login/", name="login: form", catch_response=True) as response:
            match = CSRF_INPUT.search(response.text or "")
            if response.status_code != 200 or not match:
                response.failure(f"no login form ({response.status_code})")
                return
        with self.client.post("/accounts/login/", name="login: submit", allow_redirects=False, catch_response=True,
                              data={"csrfmiddlewaretoken": match.group(1), "username": self.username,
                                    "password": PASSWORD}) as response:
            if response.status_code != 302:
                response.failure(f"login of {self.username} refused ({response.status_code})")
                return
        self.authenticated = True
        if self.environment.runner is not None:
            summary.user_logged_in(self.environment.runner.target_user_count)

    def page(self, url: str, name: str, **kwargs):
        """GET a page, a failure unless 200 (a 302 here would be a lost session). A user whose log-in
        failed (a time-out under overload) logs in again first rather than failing every page after."""
        if not self.authenticated:
            self.login()
        with self.client.get(url, name=name, allow_redirects=False, catch_response=True, **kwargs) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
            return response

    def customer_list(self, name: str = "read: customer list") -> None:
        page = random.choice([1, 1, 1, 2, 3])
        sort = random.choice(CUSTOMER_SORTS)
        response = self.page(f"/customers/?sort={sort}&page={page}", name)
        self.customer_ids = [int(pk) for pk in CUSTOMER_LINK.findall(response.text or "")] or self.customer_ids

    def opportunity_list(self) -> None:
        self.page("/opportunities/list/", "read: opportunity list")


class RepUser(CrmUser):
    """A sales rep: lists, search, the board, a customer's page with its panels, logging what they did,
    moving their own deals along the pipeline."""

    weight = 4
    role = "rep"
    once = ("browse_customers", "search_customers", "browse_opportunities", "board", "view_customer",
            "log_activity", "move_deal", "move_deal", "move_deal")

    def on_start(self) -> None:
        super().on_start()
        self.open_cards: list[tuple[int, int]] = []
        self.last_open_stages: set[int] = set()
        self.customer_list()
        if ONCE:
            self.run_once()

    @task(3)
    def browse_customers(self) -> None:
        self.customer_list()

    @task(2)
    def search_customers(self) -> None:
        self.page(f"/customers/?q={random.choice(SEARCH_TERMS)}", "read: customer search")

    @task(2)
    def browse_opportunities(self) -> None:
        self.opportunity_list()

    @task(3)
    def board(self) -> None:
        response = self.page("/opportunities/", "read: board")
        text = response.text or ""
        columns = BOARD_COLUMN.findall(text)
        kinds = {int(stage): kind for stage, kind in columns}
        open_stages = [int(stage) for stage, kind in columns if kind == "open"]
        self.last_open_stages = set(open_stages[-1:])
        self.open_cards = [(int(pk), int(stage)) for pk, stage in BOARD_CARD.findall(text)
                           if kinds.get(int(stage)) == "open"]

    def customer_detail(self) -> str:
        """A customer's page and the panels it loads (HTMX, hx-trigger=load); the activities panel's
        HTML (it holds the quick-log form)."""
        if not self.customer_ids:
            self.customer_list()
        if not self.customer_ids:
            return ""
        pk = random.choice(self.customer_ids)
        response = self.page(f"/customers/{pk}/", "read: customer detail")
        activities_panel = ""
        for url in PANEL.findall(response.text or ""):
            url = unescape(url)
            kind = url.strip("/").split("/")[0]
            panel = self.page(url, f"read: customer panel ({kind})", headers={"HX-Request": "true"})
            if kind == "activities":
                activities_panel = panel.text or ""
        return activities_panel

    @task(3)
    def view_customer(self) -> None:
        self.customer_detail()

    @task(3)
    def log_activity(self) -> None:
        """Open a customer and log a done call through the quick-log form of its activities panel."""
        panel = self.customer_detail()
        key = IDEMPOTENCY_KEY.search(panel)
        kinds = KIND_SELECT.search(panel)
        customer = re.search(r'name="customer" value="(\d+)"', panel)
        if not (key and kinds and customer):
            return
        kind_ids = OPTION_VALUE.findall(kinds.group(1))
        data = {
            "csrfmiddlewaretoken": self.csrf(), "idempotency_key": key.group(1), "customer": customer.group(1),
            "kind": random.choice(kind_ids), "subject": f"load test call {uuid.uuid4().hex[:8]}",
            "outcome": random.choice(["", "positive", "neutral", "negative"]), "notes": "logged by the load test",
        }
        with self.client.post("/activities/quick-log/", name="write: log activity", data=data,
                              headers={"HX-Request": "true"}, allow_redirects=False, catch_response=True) as response:
            if response.status_code != 200 or "activity-logged" not in (response.headers.get("HX-Trigger") or ""):
                response.failure(f"not logged (HTTP {response.status_code})")

    @task(2)
    def move_deal(self) -> None:
        """Open one of the rep's open deals (and the panels its page loads), then make a move the page
        offers: advance it; or tick its stage's checklist and advance ("Save and advance", when only
        checklist items are missing); or move it back one stage with a reason. A refusal is a failure:
        the page said the move was allowed."""
        if not self.open_cards:
            self.board()
        if not self.open_cards:
            return
        pk, stage = random.choice(self.open_cards)
        response = self.page(f"/opportunities/{pk}/", "read: opportunity detail")
        text = response.text or ""
        for url in PANEL.findall(text):
            kind = unescape(url).strip("/").split("/")[0]
            self.page(unescape(url), f"read: opportunity panel ({kind})", headers={"HX-Request": "true"})
        from_stage = FROM_STAGE.search(text)
        if not from_stage:
            return
        allowed = {a or b for a, b in ENABLED_ACTION.findall(text)}
        criteria = CRITERIA_FORM.search(text)
        criteria_inputs = set(INPUT_NAME.findall(criteria.group(1))) - {"csrfmiddlewaretoken", "from_stage"} if criteria else set()
        checklist_only = bool(criteria_inputs) and all(name.startswith("item_") for name in criteria_inputs)
        if checklist_only and stage not in self.last_open_stages:
            allowed.add("tick_advance")
        choices = sorted(allowed & {"advance", "tick_advance", "move_back"})
        if not choices:
            return
        action = random.choice(choices)
        data = {"csrfmiddlewaretoken": self.csrf(), "from_stage": from_stage.group(1)}
        url, name = f"/opportunities/{pk}/transition/advance/", "write: advance deal"
        if action == "tick_advance":
            url, name = f"/opportunities/{pk}/criteria/", "write: tick checklist and advance"
            data.update({item: "on" for item in criteria_inputs}, advance="1")
        elif action == "move_back":
            select = MOVE_BACK_SELECT.search(text)
            options = OPTION_VALUE.findall(select.group(1)) if select else []
            if not options:
                return
            url, name = f"/opportunities/{pk}/transition/move_back/", "write: move deal back"
            data.update(to_stage=options[0], reason="load test: back one stage")
        with self.client.post(url, name=name, data=data, headers={"HX-Request": "true"}, allow_redirects=False,
                              catch_response=True) as response:
            if response.status_code != 204 or response.headers.get("HX-Refresh") != "true":
                response.failure(f"{action} of {pk} refused (HTTP {response.status_code}, "
                                 f"{response.headers.get('HX-Trigger') or 'no trigger'})")
            else:
                self.open_cards = [card for card in self.open_cards if card[0] != pk]


class ManagerUser(CrmUser):
    """A sales manager: the team dashboard (month, quarter), the team's week of activities, the team's
    customer and opportunity lists and the board."""

    weight = 1
    role = "manager"
    once = ("dashboard_month", "dashboard_quarter", "team_week", "team_customers", "team_opportunities",
            "team_board")

    def on_start(self) -> None:
        super().on_start()
        if ONCE:
            self.run_once()

    @task(3)
    def dashboard_month(self) -> None:
        self.page("/dashboards/?period=month", "read: dashboard (month)")

    @task(2)
    def dashboard_quarter(self) -> None:
        self.page("/dashboards/?period=quarter", "read: dashboard (quarter)")

    @task(2)
    def team_week(self) -> None:
        self.page("/activities/team/", "read: team activities")

    @task(2)
    def team_customers(self) -> None:
        self.customer_list("read: customer list (team)")

    @task(1)
    def team_opportunities(self) -> None:
        self.page("/opportunities/list/", "read: opportunity list (team)")

    @task(1)
    def team_board(self) -> None:
        self.page("/opportunities/", "read: board (team)")
