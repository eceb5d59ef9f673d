"""The certificate office console in headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium): what the clerks do, start to end, against the real test stack — and that no page asks anything of
any address but 127.0.0.1 (Chrome's DevTools performance log sees every request the pages make).

Screenshots of every page go to docs/img/console-*.png (the walkthrough shows them)."""
from __future__ import annotations

import io
import json
import shutil
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from console import checkcode
from kit.clock import today_cn

from tests.conftest import Stack, fresh_county, village
from tests.console_helpers import check_key, console_url

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parent.parent
IMG = ROOT / "docs" / "img"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
LOCAL = ("http://127.0.0.1:", "data:", "about:", "chrome:", "blob:http://127.0.0.1:")


@pytest.fixture(scope="module")
def chrome() -> Iterator[object]:
    if not (CHROMIUM and DRIVER):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make setup installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,768",
                "--lang=zh-CN", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-default-apps"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def requested(driver: object) -> list[str]:
    """Every URL the pages requested since the last call (DevTools Network.requestWillBeSent), less those the
    page's Content-Security-Policy stopped in the browser (Network.loadingFailed, blockedReason csp): those
    never left the machine."""
    sent: dict[str, str] = {}
    blocked: set[str] = set()
    for entry in driver.get_log("performance"):  # type: ignore[attr-defined]
        msg = json.loads(entry["message"])["message"]
        params = msg.get("params", {})
        if msg.get("method") == "Network.requestWillBeSent":
            sent[params["requestId"]] = params["request"]["url"]
        elif msg.get("method") == "Network.loadingFailed" and params.get("blockedReason") == "csp":
            blocked.add(params["requestId"])
    return [url for rid, url in sent.items() if rid not in blocked]


def assert_local(driver: object) -> int:
    urls = requested(driver)
    outside = [u for u in urls if not u.startswith(LOCAL)]
    assert not outside, f"pages requested outside 127.0.0.1: {outside}"
    return len(urls)


def shot(driver: object, name: str) -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(IMG / f"console-{name}.png"))  # type: ignore[attr-defined]


def fill(driver: object, values: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for name, value in values.items():
        el = driver.find_element(By.NAME, name)  # type: ignore[attr-defined]
        if el.tag_name == "select":
            Select(el).select_by_value(value)
        elif el.get_attribute("type") in ("date", "time"):
            driver.execute_script("arguments[0].value = arguments[1]", el, value)  # type: ignore[attr-defined]
        else:
            el.clear()
            el.send_keys(value)


def click(driver: object, css: str) -> None:
    """Click what submits a form or follows a link, and wait until the next page has replaced this one."""
    from selenium.webdriver.common.by import By

    follow(driver, driver.find_element(By.CSS_SELECTOR, css))  # type: ignore[attr-defined]


def follow(driver: object, element: object) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")  # type: ignore[attr-defined]
    element.click()  # type: ignore[attr-defined]

    def replaced(_: object) -> bool:
        """The old page is gone: stale, or (Chromium, mid-navigation) its node no longer in the document."""
        try:
            return bool(ec.staleness_of(page)(driver))
        except WebDriverException:
            return True

    WebDriverWait(driver, 30).until(replaced)


def text(driver: object) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------------- public
def test_public_pages_ask_nothing_of_the_internet(stack: Stack, chrome: object) -> None:
    """The login page and the verification page a QR opens: local assets, the serial filled in, the check
    code confirmed, an unknown serial answered as such."""
    base = console_url(stack)
    requested(chrome)
    chrome.get(f"{base}/login")  # type: ignore[attr-defined]
    assert "工作人员登录" in text(chrome)
    shot(chrome, "login")
    serial = f"Z{uuid.uuid4().int % 10**9:09d}"
    url = checkcode.verification_url(base, check_key(stack), serial)
    chrome.get(url)  # type: ignore[attr-defined]
    assert "二维码校验码正确" in text(chrome)
    from selenium.webdriver.common.by import By

    assert chrome.find_element(By.NAME, "serial").get_attribute("value") == serial  # type: ignore[attr-defined]
    fill(chrome, {"child_name": "张三", "birth_date": "2026-01-01"})
    click(chrome, "form[action='/verify'] button[type=submit]")
    assert "查无此证" in chrome.find_element(By.ID, "verdict").text  # type: ignore[attr-defined]
    shot(chrome, "verify")
    assert assert_local(chrome) >= 6  # two pages, their stylesheets, the form's post


def test_every_services_docs_load_from_the_service(stack: Stack, chrome: object) -> None:
    """/docs and /redoc of the four services render with their own assets: nothing from a CDN."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    services = ("registry", "screening", "certificates", "indicators")
    if "cdn." in httpx.get(f"{stack.url('registry')}/docs", timeout=30).text:
        pytest.skip("kit serves /docs with a CDN's assets (the local-assets change of kit is not merged yet)")
    requested(chrome)
    for svc in services:
        chrome.get(f"{stack.url(svc)}/docs")  # type: ignore[attr-defined]
        WebDriverWait(chrome, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"))
        chrome.get(f"{stack.url(svc)}/redoc")  # type: ignore[attr-defined]
        WebDriverWait(chrome, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-section-id]"))
    shot(chrome, "service-docs")
    assert assert_local(chrome) >= 4 * len(services)


# ---------------------------------------------------------------------------------------------------- clerks
#: what the whole flow needs of the services beyond the console (see docs/decisions.md 62)
NEEDED = {
    "registry": [("post", "/v1/auth/login")],
    "certificates": [("get", "/v1/worklist"), ("post", "/v1/certificates/{serial}/prints")],
}


def missing_operations(stack: Stack) -> list[str]:
    out = []
    for svc, ops in NEEDED.items():
        paths = httpx.get(f"{stack.url(svc)}/openapi.json", timeout=30).json()["paths"]
        out += [f"{svc}: {m.upper()} {p}" for m, p in ops if m not in paths.get(p, {})]
    schema = httpx.get(f"{stack.url('certificates')}/openapi.json", timeout=30).json()
    body = json.dumps(schema.get("components", {}).get("schemas", {}).get("CertificateIn", {}))
    if '"content"' not in body:
        out.append("certificates: POST /v1/certificates with `content`")
    return out


async def test_a_clerk_prepares_another_seals_prints_and_the_qr_verifies(stack: Stack, chrome: object,
                                                                          http: httpx.AsyncClient) -> None:
    missing = missing_operations(stack)
    if missing:
        pytest.skip("the services do not offer yet what the console calls: " + "; ".join(missing))
    import pypdfium2
    from certificates.tests import stack_helpers as h
    from console.tests.test_print import decode_qr
    from kit import accounts
    from pypdf import PdfReader
    from selenium.webdriver.common.by import By

    base, registry, certs = console_url(stack), stack.url("registry"), stack.url("certificates")
    county = fresh_county()
    o = await h.office(http, registry, certs, village(county), stack.settings)
    born = today_cn() - timedelta(days=1)
    (child,) = await h.births(http, registry, o.code, village(county), 1, born)
    await h.wait_known(f"postgresql://postgres@127.0.0.1:5432/{stack.spec.db_prefix}certificates", [child])
    await h.stock(http, certs, o, h.new_prefix(), 1, 5, born)
    password = {a: f"pw-{uuid.uuid4().hex}" for a in (o.keeper, o.sealer, o.head)}
    for account, pw in password.items():
        await accounts.reset_password(stack.settings, account, pw)

    def login(account: str) -> None:
        chrome.get(f"{base}/login")  # type: ignore[attr-defined]
        fill(chrome, {"username": account, "password": password[account]})
        click(chrome, "form[action='/login'] button[type=submit]")

    def logout() -> None:
        click(chrome, "form[action='/logout'] button")

    requested(chrome)
    # clerk A (证件管理员) finds the newborn on the worklist and prepares
    login(o.keeper)
    # the search: by the mother's name (the registry's, masked for a custodian without pii:read) and birth date
    fill(chrome, {"q": "母亲", "birth_date": born.isoformat()})
    click(chrome, "form[role=search] button")
    row = chrome.find_element(By.XPATH, f"//tr[td/code[text()='{child}']]")  # type: ignore[attr-defined]
    assert "母*" in row.text and "母亲" not in row.text
    shot(chrome, "worklist")
    fill(chrome, {"q": "不是这位母亲"})
    click(chrome, "form[role=search] button")
    assert not chrome.find_elements(By.XPATH, f"//tr[td/code[text()='{child}']]")  # type: ignore[attr-defined]
    fill(chrome, {"q": "母亲"})
    click(chrome, "form[role=search] button")
    row = chrome.find_element(By.XPATH, f"//tr[td/code[text()='{child}']]")  # type: ignore[attr-defined]
    follow(chrome, row.find_element(By.LINK_TEXT, "制证"))
    assert chrome.find_element(By.NAME, "birth_date").get_attribute("value") == born.isoformat()  # type: ignore[attr-defined]
    name = "测小" + "一二三四五六七八九"[uuid.uuid4().int % 9]
    fill(chrome, {"child_name": name, "birth_time": "08:00", "gestational_weeks": "39", "birth_length_cm": "50",
                  "health": "good", "birth_province": "江苏省", "birth_city": "宿迁市", "birth_county": "泗阳县",
                  "place_type": "hospital", "mother_name": "王丽", "mother_age": "31", "mother_id_type": "passport",
                  "mother_id_number": "E12345678"})
    assert chrome.find_element(By.NAME, "birth_region_code").get_attribute("value") == county[:6]  # type: ignore[attr-defined]
    # errors per field: the console's own (a weight out of range), then the service's (a birthplace county other
    # than the delivering institution's, which only the certificates service knows)
    fill(chrome, {"birth_weight_g": "80000"})
    click(chrome, "button[value=preview]")
    why = chrome.find_element(By.XPATH, "//label[.//*[@name='birth_weight_g']]/span[@class='why']")  # type: ignore[attr-defined]
    assert "300" in why.text and "7000" in why.text
    shot(chrome, "prepare-errors")
    elsewhere = "110101" if county[:6] != "110101" else "110102"
    fill(chrome, {"birth_weight_g": "3250", "birth_region_code": elsewhere})
    click(chrome, "button[value=preview]")
    click(chrome, "#do-prepare")
    why = chrome.find_element(By.XPATH, "//label[.//*[@name='birth_region_code']]/span[@class='why']")  # type: ignore[attr-defined]
    assert county[:6] in why.text
    fill(chrome, {"birth_region_code": county[:6]})
    click(chrome, "button[value=preview]")
    assert name in chrome.find_element(By.CSS_SELECTOR, ".sheet").text  # type: ignore[attr-defined]
    shot(chrome, "prepare")
    click(chrome, "#do-prepare")
    serial = chrome.current_url.rsplit("/", 1)[1]  # type: ignore[attr-defined]
    assert "已制证待盖章" in text(chrome)
    # A's own seal is refused (证章分离)
    click(chrome, "#do-seal")
    assert chrome.find_element(By.CSS_SELECTOR, "p.error").text  # type: ignore[attr-defined]
    assert "已制证待盖章" in text(chrome)
    shot(chrome, "seal-refused")
    logout()
    # clerk B (印章管理员) seals from the queue, then prints
    login(o.sealer)
    chrome.get(f"{base}/seal")  # type: ignore[attr-defined]
    shot(chrome, "seal-queue")
    follow(chrome, chrome.find_element(By.XPATH, f"//tr[td/code[text()='{serial}']]//a"))  # type: ignore[attr-defined]
    click(chrome, "#do-seal")
    assert "已签发" in text(chrome)
    shot(chrome, "certificate")
    pdf = _print(chrome, base, serial, reason=None)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    page_text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert serial in page_text and name in page_text
    qr = decode_qr(pdf.content)
    pypdfium2.PdfDocument(pdf.content)[0].render(scale=1.2).to_pil().save(IMG / "console-print.png")
    assert urlparse(qr).path == "/verify" and parse_qs(urlparse(qr).query)["serial"] == [serial]
    assert name not in qr
    # a second print without a reason is refused; with one it is counted
    chrome.get(f"{base}/certificates/{serial}")  # type: ignore[attr-defined]
    again = _print(chrome, base, serial, reason=None)
    assert again.status_code == 422 and again.headers["content-type"].startswith("text/html")
    reprint = _print(chrome, base, serial, reason="打印卡纸")
    assert reprint.status_code == 200 and "第2次打印" in PdfReader(io.BytesIO(reprint.content)).pages[0].extract_text()
    chrome.get(f"{base}/certificates/{serial}")  # type: ignore[attr-defined]
    assert chrome.find_element(By.XPATH, "//tr[th='打印次数']/td").text == "2"  # type: ignore[attr-defined]
    logout()

    def verdict(url: str, child_name: str) -> str:
        chrome.get(url)  # type: ignore[attr-defined]
        fill(chrome, {"child_name": child_name, "birth_date": born.isoformat()})
        click(chrome, "form[action='/verify'] button[type=submit]")
        return str(chrome.find_element(By.ID, "verdict").text)  # type: ignore[attr-defined]

    # the QR opens the verification page: valid
    assert verdict(qr, name) == "有效"
    # a correction of the name is a replacement (换发): A prepares it from the old content, B seals it, and the
    # old certificate is collected (superseded), never edited
    login(o.keeper)
    chrome.get(f"{base}/certificates/{serial}")  # type: ignore[attr-defined]
    follow(chrome, chrome.find_element(By.LINK_TEXT, "换发（更正内容）"))  # type: ignore[attr-defined]
    assert chrome.find_element(By.NAME, "mother_name").get_attribute("value") == "王丽"  # type: ignore[attr-defined]
    corrected = name + "乐"
    fill(chrome, {"child_name": corrected})
    click(chrome, "button[value=preview]")
    click(chrome, "#do-prepare")
    new_serial = chrome.current_url.rsplit("/", 1)[1]  # type: ignore[attr-defined]
    assert new_serial != serial and "换发" in text(chrome)
    logout()
    login(o.sealer)
    chrome.get(f"{base}/certificates/{new_serial}")  # type: ignore[attr-defined]
    click(chrome, "#do-seal")
    assert "已签发" in text(chrome)
    logout()
    assert verdict(qr, name) == "已收回（已换发或补发）"
    new_qr = checkcode.verification_url(base, check_key(stack), new_serial)
    assert verdict(new_qr, corrected) == "有效"
    # the office head voids the new one; the verification says so
    login(o.head)
    chrome.get(f"{base}/certificates/{new_serial}")  # type: ignore[attr-defined]
    chrome.find_element(By.ID, "void-reason").send_keys("信息登记错误")  # type: ignore[attr-defined]
    click(chrome, "#do-void")
    assert "已作废" in text(chrome)
    # a batch of blanks: the office head records it, the custodian confirms it (双人验收); only then is it stock
    chrome.get(f"{base}/stock")  # type: ignore[attr-defined]
    batch, prefix = f"B-{uuid.uuid4().hex[:8]}", h.new_prefix()
    fill(chrome, {"batch_no": batch, "serial_from": f"{prefix}00001", "serial_to": f"{prefix}00050",
                  "received_on": today_cn().isoformat()})
    click(chrome, "form[action='/stock/batches'] button")
    waiting = chrome.find_element(By.XPATH, f"//table[@id='awaiting-batches']//tr[td/code[text()='{batch}']]")  # type: ignore[attr-defined]
    assert "50" in waiting.text
    follow(chrome, waiting.find_element(By.CSS_SELECTOR, "button.confirm-batch"))  # the head's own: refused
    assert chrome.find_element(By.CSS_SELECTOR, "p.error").text  # type: ignore[attr-defined]
    shot(chrome, "stock-awaiting")
    logout()
    login(o.keeper)
    chrome.get(f"{base}/stock")  # type: ignore[attr-defined]
    waiting = chrome.find_element(By.XPATH, f"//table[@id='awaiting-batches']//tr[td/code[text()='{batch}']]")  # type: ignore[attr-defined]
    follow(chrome, waiting.find_element(By.CSS_SELECTOR, "button.confirm-batch"))
    assert not chrome.find_elements(By.XPATH, f"//tr[td/code[text()='{batch}']]")  # type: ignore[attr-defined]
    shot(chrome, "stock")
    logout()
    assert verdict(new_qr, corrected) == "已作废"
    assert assert_local(chrome) > 20


def _print(driver: object, base: str, serial: str, reason: str | None) -> httpx.Response:
    """What the print button posts, with the browser's session cookie and the page's CSRF token (the PDF
    opens in the browser's viewer, which a test cannot read; the request is the same)."""
    from selenium.webdriver.common.by import By

    form = driver.find_element(By.ID, "print-form")  # type: ignore[attr-defined]
    token = form.find_element(By.NAME, "csrf_token").get_attribute("value")
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}  # type: ignore[attr-defined]
    data = {"csrf_token": token, **({"reason": reason} if reason else {})}
    return httpx.post(f"{base}/certificates/{serial}/print", data=data, cookies=cookies, timeout=60)
