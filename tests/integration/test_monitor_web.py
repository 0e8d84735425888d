"""``actors monitor`` against a real worker and nats-server, both run as subprocesses like the
monitor itself: in a real browser (Debian's chromium driven by Selenium and chromedriver) what
a user does on the pages, and over HTTP the JSON API, the actions and their credentials.

The browser test is marked slow (a browser and two processes take 9-25 s on a shared
machine); the HTTP tests stay in the main suite. Screenshots of the browser test go to its
tmp dir (``monitor-*.png``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import chord
from actors.config import Settings
from actors.nats.broker import Broker
from actors.nats.server import EmbeddedServer
from actors.wire import topology
from actors.wire.ids import new_task_id
from actors.wire.message import TaskMessage, encode
from actors.worker.dead_letters import dead_letter
from tests.apps import monitor as tasks
from tests.conftest import ActorsProcess, free_port
from tests.helpers import eventually

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
USER, PASSWORD, TOKEN = "admin", "s3cret-pass", "t0ken-for-scripts"
needs_chromium = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)


class Monitor:
    """``actors monitor`` in a subprocess on a free loopback port."""

    def __init__(self, url: str, log_file: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = ActorsProcess(
            ["monitor", "tests.apps.monitor:app", "--port", str(self.port)],
            url,
            log_file,
            ACTORS_MONITOR_USER=USER,
            ACTORS_MONITOR_PASSWORD=PASSWORD,
            ACTORS_MONITOR_TOKEN=TOKEN,
        )
        eventually(
            lambda: self.get("/healthz", auth=False)[0] == 200,
            what=lambda: f"the monitor to answer /healthz:\n{self.process.output()}",
            ignore=(OSError,),
            timeout=20,
        )

    def get(self, path: str, auth: bool = True) -> tuple[int, Any]:
        return self.request("GET", path, None, auth)

    def request(
        self, method: str, path: str, form: dict[str, str] | None, auth: bool | str
    ) -> tuple[int, Any]:
        body = "&".join(f"{k}={v}" for k, v in (form or {}).items()).encode() if form else None
        request = urllib.request.Request(self.base + path, data=body, method=method)
        if auth:
            request.add_header("Authorization", auth if isinstance(auth, str) else basic_auth())
        if body is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, _body(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _body(error.read())


def _body(data: bytes) -> Any:
    try:
        return json.loads(data or b"null")
    except ValueError:
        return data.decode()


def basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture
def monitor(
    nats_server: EmbeddedServer, tmp_path: Path, worker_process: Callable[..., Any]
) -> Iterator[Monitor]:
    worker_process("tests.apps.monitor:app")
    started = Monitor(nats_server.url, tmp_path / "monitor.log")
    yield started
    started.process.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    # Basic auth for every request of the page (navigation, fetch and EventSource alike).
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": basic_auth()}}
    )
    yield driver
    driver.quit()


def wait_for(driver: Any, condition: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda _: condition())
    except TimeoutException:
        logs = "\n".join(str(entry) for entry in driver.get_log("browser"))
        page = driver.find_element(By.TAG_NAME, "body").text[:3000]
        message = f"timed out waiting for {what}; page:\n{page}\nconsole:\n{logs}"
        raise AssertionError(message) from None


# Live pages swap their content while the test reads them: read with one script each (atomic
# in the page), and retry a click whose button was just replaced.


def cell(driver: Any, task_id: str, column: int) -> str:
    script = "const c = document.querySelectorAll(arguments[0]); return c[arguments[1]]?.innerText"
    return str(driver.execute_script(script, f'tr[data-id="{task_id}"] td', column) or "")


def texts(driver: Any, selector: str) -> list[str]:
    script = "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)"
    return list(driver.execute_script(script, selector))


def click(driver: Any, xpath: str) -> None:
    def clicked() -> bool:
        try:
            driver.find_element(By.XPATH, xpath).click()
        except StaleElementReferenceException:
            return False
        return True

    wait_for(driver, clicked, f"a click on {xpath}")


def put_dead_letter(url: str, message: TaskMessage) -> None:
    async def run() -> None:
        broker = await Broker.connect(Settings.build({"nats_url": url}), "test")
        try:
            await dead_letter(
                broker,
                subject=topology.task_subject(message.task),
                data=encode(message.to_wire()),
                headers={"Content-Type": topology.MSGPACK},
                seq=1,
                reason="test: too many deliveries",
                task=message.task,
            )
        finally:
            await broker.close()

    asyncio.run(run())


@needs_chromium
@pytest.mark.slow  # 9-25 s on the shared CI machine: run after the main suite
def test_monitor_in_a_browser(
    monitor: Monitor, browser: Any, nats_server: EmbeddedServer, tmp_path: Path
) -> None:
    app = tasks.app
    app.conf.nats_url = nats_server.url
    app.conf.task_send_sent_event = True  # a countdown task is then listed before it runs
    try:
        browser.get(monitor.base + "/tasks")
        browser.execute_script("window.stillTheSamePage = true")

        # Tasks appear live, without a reload: one failing, one retried, a chord.
        ok = tasks.add.delay(2, 3)
        failing = tasks.boom.delay("bad")
        retried = tasks.flaky.delay("again")
        joined = chord([tasks.add.s(i, i) for i in range(3)], tasks.total.s()).apply_async()
        assert joined.get(timeout=10) == 6
        wait_for(browser, lambda: cell(browser, ok.id, 2) == "SUCCESS", "the add task")
        wait_for(browser, lambda: cell(browser, failing.id, 2) == "FAILURE", "the failure")
        wait_for(browser, lambda: cell(browser, retried.id, 2) == "SUCCESS", "the retried task")
        assert cell(browser, retried.id, 4) == "1"  # retries
        wait_for(browser, lambda: cell(browser, joined.id, 2) == "SUCCESS", "the chord body")
        assert browser.execute_script("return window.stillTheSamePage") is True
        browser.save_screenshot(str(tmp_path / "monitor-tasks.png"))

        # A task's detail: its timeline and its chord.
        browser.get(f"{monitor.base}/tasks/{joined.id}")
        steps = texts(browser, "#timeline li b")
        assert steps == ["task-received", "task-started", "task-succeeded"]
        assert len(texts(browser, "#workflow g.node")) == 4  # three chord members and the body
        assert len(texts(browser, "#workflow line.join")) == 3
        browser.save_screenshot(str(tmp_path / "monitor-task.png"))

        # Revoke a countdown task from its page: it never runs, its state becomes REVOKED.
        later = tasks.add.apply_async((1, 1), countdown=3)
        browser.get(f"{monitor.base}/tasks/{later.id}")
        wait_for(browser, lambda: texts(browser, "#state") == ["PENDING"], "the task sent")
        click(browser, "//button[text()='Revoke']")
        wait_for(browser, lambda: texts(browser, "#notice"), "the revoke notice")
        assert texts(browser, "#notice") == [f"revoked {later.id}"]
        wait_for(
            browser, lambda: texts(browser, "#state") == ["REVOKED"], "the task to become REVOKED"
        )
        assert later.state == "REVOKED"

        # Replay a dead letter from the dead-letters page: the task then runs.
        dead = TaskMessage(id=new_task_id(), task="mon.add", args=[20, 22])
        put_dead_letter(nats_server.url, dead)
        browser.get(monitor.base + "/dead")
        row = wait_for(
            browser,
            lambda: browser.find_elements(By.CSS_SELECTOR, "#dead tr[data-seq]"),
            "the dead letter",
        )[0]
        assert dead.id in row.text
        row.find_element(By.XPATH, ".//button[text()='Replay']").click()
        wait_for(browser, lambda: "no dead letters" in browser.page_source, "an empty list")
        assert app.AsyncResult(dead.id).get(timeout=10) == 42

        browser.get(monitor.base + "/")
        wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, ".chart rect.failed"), "")
        browser.save_screenshot(str(tmp_path / "monitor-dashboard.png"))
    finally:
        app.close()


def test_actions_need_credentials_and_a_csrf_token(monitor: Monitor) -> None:
    purge = "/actions/dead/purge"
    status, body = monitor.request("POST", purge, {}, auth=False)
    assert (status, body) == (401, {"error": "authentication required"})
    assert monitor.get("/api/dashboard", auth=False)[0] == 401
    status, body = monitor.request("POST", purge, {}, auth=True)  # no CSRF token
    assert status == 403 and "CSRF" in body["error"]
    status, body = monitor.request("POST", purge, {"csrf_token": "forged"}, auth=True)
    assert status == 403
    assert monitor.request("GET", purge, None, auth=True)[0] == 405  # POST only
    assert monitor.get("/api/tasks?state=NOPE")[0] == 400
    assert monitor.get("/api/tasks?per_page=100000")[0] == 400
    assert monitor.get("/api/tasks?q=..%2F..")[0] == 400


def test_worker_control_and_the_json_api_with_a_bearer_token(monitor: Monitor) -> None:
    bearer = f"Bearer {TOKEN}"
    status, workers = monitor.request("GET", "/api/workers", None, bearer)
    assert status == 200 and len(workers) == 1
    hostname = workers[0]["hostname"]
    assert "mon.boom" in workers[0]["actors"]
    path = f"/actions/workers/{hostname}"
    status, body = monitor.request(
        "POST", f"{path}/rate-limit", {"actor": "mon.add", "rate": "10/s"}, bearer
    )
    assert status == 200 and "rate limit" in body["ok"], body
    status, body = monitor.request(
        "POST", f"{path}/rate-limit", {"actor": "mon.add", "rate": "x"}, bearer
    )
    assert status == 400 and "rate" in body["error"]
    status, body = monitor.request("POST", f"{path}/cancel-consumer", {"actor": "mon.boom"}, bearer)
    assert status == 200 and "no longer consuming from mon.boom" in body["ok"], body
    status, detail = monitor.request("GET", f"/api/workers/{hostname}", None, bearer)
    assert status == 200 and "mon.boom" not in detail["serving"]
    assert "mon.boom" in detail["actors"]  # it may serve it again (add-consumer)
    status, body = monitor.request("POST", f"{path}/time-limit", {"actor": "mon.add"}, bearer)
    assert status == 404 and "no worker command" in body["error"]
    status, body = monitor.request("POST", "/actions/workers/9@nowhere/shutdown", {}, bearer)
    assert status == 404
    status, entries = monitor.request("GET", "/api/periodic", None, bearer)
    assert [(e["name"], e["source"], e["enabled"]) for e in entries] == [
        ("hourly-add", "code", True)
    ]
    status, body = monitor.request("POST", "/actions/periodic/hourly-add/disable", {}, bearer)
    assert (status, body) == (200, {"ok": "disabled hourly-add"})
    assert not monitor.request("GET", "/api/periodic", None, bearer)[1][0]["enabled"]
    status, body = monitor.request("POST", "/actions/periodic/nope/enable", {}, bearer)
    assert status == 404
    status, metrics = monitor.request("GET", "/metrics", None, bearer)
    assert status == 200 and "actors_monitor_workers_online 1.0" in metrics


def test_a_restarted_monitor_knows_the_tasks_run_before(
    monitor: Monitor, nats_server: EmbeddedServer, tmp_path: Path
) -> None:
    app = tasks.app
    app.conf.nats_url = nats_server.url
    try:
        failing = tasks.boom.delay("before the restart")
        with pytest.raises(ValueError):
            failing.get(timeout=10)
    finally:
        app.close()
    eventually(
        lambda: monitor.get(f"/api/tasks/{failing.id}")[1],
        until=lambda found: (found.get("task") or {}).get("state") == "FAILURE",
        what="the failure in the first monitor",
    )
    monitor.process.close()
    again = Monitor(nats_server.url, tmp_path / "monitor-again.log")
    try:
        eventually(
            lambda: again.get(f"/api/tasks/{failing.id}")[1],
            until=lambda found: (found.get("task") or {}).get("state") == "FAILURE",
            what="the failure in the restarted monitor",
        )
        assert "before the restart" in again.get(f"/api/tasks/{failing.id}")[1]["task"]["args"]
    finally:
        again.process.close()
