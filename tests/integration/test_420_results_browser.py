"""The web page in a real browser (Debian's headless Chromium driven by
Selenium and chromium-driver) against the real stack: httpd + mod_ytkafka +
mod_dbd, Kafka, ytkafka-consumer and the fake YouTube. The SQLite database
is shared the way docs/DEPLOY.md says: the consumer runs as one user, httpd
as another, group-writable files in a setgid directory."""
import grp
import os
import shutil
import sqlite3

import pytest

from httpd import SRC, httpd_factory, module_path, new_workdir  # noqa: F401
from ytc_helpers import consumer_args, consumer_factory, fake_yt  # noqa: F401
import ytfixtures

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def shared_db(d, group):
    """The database made before either side opens it, WAL, schema, mode
    0660 in a setgid 2770 directory of httpd's group."""
    path = os.path.join(d, "ytkafka.db")
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    with open(os.path.join(SRC, "conf", "schema.sql")) as f:
        db.executescript(f.read())
    db.close()
    gid = grp.getgrnam(group).gr_gid
    os.chown(d, -1, gid)
    os.chmod(d, 0o2770)
    for f in os.listdir(d):
        os.chown(os.path.join(d, f), -1, gid)
        os.chmod(os.path.join(d, f), 0o660)
    return path


@pytest.fixture
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        pytest.skip("chromium and chromium-driver are not installed (dev/deps test)")
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
              "--disable-dev-shm-usage", "--window-size=1280,1000"):
        o.add_argument(a)
    d = webdriver.Chrome(options=o,
                         service=Service(executable_path=DRIVER))
    yield d
    d.quit()


@pytest.mark.skipif(not os.path.exists(module_path()), reason="mod_ytkafka not built")
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run httpd as another user")
def test_page_submit_results_and_html_as_text(kafka, httpd_factory, fake_yt,
                                              consumer_factory, browser, workdir):
    topic = kafka.new_topic("web")
    good = ytfixtures.video_id(1, "web")
    evil = ytfixtures.video_id(2, "web")
    fake_yt.set(evil, "ok", title=XSS)
    facts = fake_yt.video(good)
    d = os.path.join(new_workdir("webdb"), "db")
    os.mkdir(d)
    path = shared_db(d, "nogroup")
    consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + path))
    h = httpd_factory(modules=["dbd", "alias", "dir", "mime"])
    h.write_config("""TypesConfig /etc/mime.types
Define YTK_DB_PATH %s
Define YTK_WEB_DIR %s
YtKafkaBrokers %s
YtKafkaTopic %s
<Location /links/send-message>
    SetHandler ytkafka-send
</Location>
Include %s
""" % (path, os.path.join(SRC, "web"), kafka.bootstrap, topic,
       os.path.join(SRC, "conf", "ytkafka-results.conf")))
    h.start()

    b = browser
    b.get("http://127.0.0.1:%d/ytkafka/" % h.port)
    b.execute_script("window.__alerts = [];"
                     "window.alert = function (m) { window.__alerts.push(m); };")
    box = b.find_element(By.ID, "links")
    box.send_keys("https://youtu.be/%s\nhttps://www.youtube.com/watch?v=%s\n"
                  "https://evil.example/watch?v=%s" % (good, evil, good))
    b.find_element(By.ID, "send").click()
    wait = WebDriverWait(b, 90, poll_frequency=0.5)
    wait.until(lambda x: len(x.find_elements(By.CSS_SELECTOR, "#answers li")) == 3)
    rejected = b.find_elements(By.CSS_SELECTOR, "#answers li.rejected")
    assert len(rejected) == 1
    assert "not a YouTube host" in rejected[0].text
    assert len(b.find_elements(By.CSS_SELECTOR, "#answers li.accepted")) == 2

    def final(vid):
        return lambda x: x.execute_script(
            "var c = document.getElementById('card-' + arguments[0]);"
            "return c && c.dataset.status;", vid) == "ok"

    wait.until(final(good))
    wait.until(final(evil))
    title = b.execute_script(
        "return document.querySelector('#card-%s .title').textContent" % good)
    assert title == facts["title"]
    evil_title = b.execute_script(
        "return document.querySelector('#card-%s .title').textContent" % evil)
    assert evil_title == XSS
    card = b.find_element(By.ID, "card-" + good)
    assert facts["author_name"] in card.text
    assert card.find_elements(By.CSS_SELECTOR, ".formats tr")
    # The HTML in the title stayed text: nothing ran, nothing was injected.
    assert b.execute_script("return window.__alerts") == []
    try:
        b.switch_to.alert
        pytest.fail("an alert is open")
    except NoAlertPresentException:
        pass
    assert b.execute_script(
        "return document.querySelectorAll('img[src=\"x\"], #results script')"
        ".length") == 0
    # The recent list reads GET /links?limit= through the same database.
    b.find_element(By.ID, "refresh").click()
    wait.until(lambda x: len(x.find_elements(By.CSS_SELECTOR, "#recent li")) >= 2)
    assert XSS in b.find_element(By.ID, "recent").text

    shots = os.path.join(workdir, "screenshots")
    os.makedirs(shots, exist_ok=True)
    b.execute_script("window.scrollTo(0, 0)")
    assert b.save_screenshot(os.path.join(shots, "results-desktop.png"))
    b.set_window_size(390, 844)
    wide = b.execute_script("return document.documentElement.scrollWidth")
    assert wide <= 390 + 1, "the page scrolls sideways at phone width"
    b.execute_script("window.scrollTo(0, 0)")
    assert b.save_screenshot(os.path.join(shots, "results-phone.png"))
    h.expect_log(r"AH0063\d", r"YTK00802")
    shutil.rmtree(d, ignore_errors=True)
