// On a server with no account yet: the first-run page makes the owner; then a group, a guest, a
// till token and two paid checks through /api/v1; the password change, the guest's contact edit
// and the report (table, chart, CSV), in Debian's chromium, with screenshots.
import { createRequire } from "node:module";
const require = createRequire(process.env.NODE_PATH + "/");
const { chromium } = require("playwright-core");

const base = process.env.BASE_URL;
const shots = process.env.SHOTS;
const password = process.env.PASSWORD;

function check(condition, what) {
  if (!condition) {
    throw new Error("web-test: " + what);
  }
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
  const page = await context.newPage();
  const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });

  await page.goto(base + "/admin");
  check(page.url().endsWith("/admin/setup"), "no owner yet: the first-run page, got " + page.url());
  await page.fill("input[name=login]", "owner");
  await page.fill("input[name=password]", password);
  await page.fill("input[name=password2]", password + "x");
  await shot("20-first-run");
  await page.click("form.box button[type=submit]");
  check((await page.textContent(".error")).includes("не совпадают"), "two different passwords are refused");
  await page.fill("input[name=login]", "owner");
  await page.fill("input[name=password]", password);
  await page.fill("input[name=password2]", password);
  await page.click("form.box button[type=submit]");
  check(page.url().endsWith("/admin/guests"), "the owner is made and signed in: " + page.url());
  await page.goto(base + "/admin/setup");
  check(page.url().endsWith("/admin/login"), "the first-run page is gone");

  await page.goto(base + "/admin/groups");
  await page.fill("input[name=name]", "Гость");
  await page.fill("input[name=rank]", "1");
  await page.fill("input[name=threshold]", "0");
  await page.fill("input[name=discount]", "0");
  await page.fill("input[name=accrual]", "5");
  await page.click("form.box button[type=submit]");
  await page.goto(base + "/admin/guests/new");
  await page.fill("input[name=name]", "Ирина");
  await page.fill("input[name=phone]", "+7 916 765-43-21");
  await page.selectOption("select[name=kind]", "card_barcode");
  await page.fill("input[name=card]", "2000000000039");
  await page.click("form.box button[type=submit]");
  const guestUrl = page.url();
  const guest = Number(guestUrl.split("/").pop());
  await page.fill("input[name=amount]", "500");
  await page.fill("input[name=reason]", "Подарок");
  await page.click("text=Провести");

  // A till: two checks through the API, one paid partly with bonuses.
  await page.goto(base + "/admin/tills");
  await page.fill("input[name=till]", "till-1");
  await page.click("form[action=\"/admin/tills\"] button[type=submit]");
  const token = (await page.textContent("#token")).trim();
  const api = async (path, body) => {
    const r = await fetch(base + path, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const json = await r.json();
    check(r.status === 200, `${path}: ${r.status} ${JSON.stringify(json)}`);
    return json;
  };
  const hold = await api("/api/v1/holds", { op_id: "w-h1", guest_id: guest, amount: 20000, check: { subtotal: 100000 } });
  const first = await api("/api/v1/payments", { op_id: "w-p1", guest_id: guest, hold_id: hold.hold_id, spent: 20000, check: { subtotal: 100000 } });
  const second = await api("/api/v1/payments", { op_id: "w-p2", guest_id: guest, hold_id: null, spent: 0, check: { subtotal: 60000 } });

  // The contact edit: a new phone, audited.
  await page.goto(guestUrl);
  await page.fill("#contact input[name=name]", "Ирина П.");
  await page.fill("#contact input[name=phone]", "8 926 111-22-33");
  await page.click("#contact button[type=submit]");
  check((await page.textContent("h1")).includes("Ирина П."), "the name is changed");
  check((await page.textContent("#changes")).includes("Изменены контактные данные"), "the change is in the guest's log");
  await shot("21-guest-contact");

  // The report: today's figures are the two checks.
  await page.goto(base + "/admin/reports");
  const total = await page.$$eval("#total th", (cells) => cells.map((c) => c.textContent.trim()));
  check(total[2] === "2", "two checks in the report: " + total);
  const money = (k) => (k / 100).toFixed(2).replace(".", ",");
  check(total[4].replace(/\s/g, "") === money(first.accrued + second.accrued), "accrued: " + total[4]);
  check(total[5].replace(/\s/g, "") === "200,00", "spent: " + total[5]);
  check((await page.$$("#chart rect.accrued")).length === 7, "a week of bars in the chart");
  check((await page.textContent("#zone")).includes("UTC+00:00"), "the zone is stated");
  await shot("22-reports");
  const csv = await page.request.get(base + (await page.getAttribute("#csv", "href")));
  check(csv.status() === 200 && (await csv.text()).includes(";till-1;2;"), "the CSV has till-1's row");

  // The password change.
  await page.goto(base + "/admin/account");
  await page.fill("input[name=old]", password);
  await page.fill("input[name=password]", password + "-2");
  await page.fill("input[name=password2]", password + "-2");
  await page.click("form.box button[type=submit]");
  check((await page.textContent("#changed")).length > 0, "the password is changed");
  await shot("23-password-changed");

  await page.goto(base + "/admin/lang/en");
  await page.goto(base + "/admin/reports");
  check((await page.content()).includes("Bonuses accrued and spent per day"), "English report");
  await shot("24-reports-en");
  await page.setViewportSize({ width: 420, height: 700 });
  await page.goto(base + "/admin/reports");
  await shot("25-reports-narrow");
} finally {
  await browser.close();
}
