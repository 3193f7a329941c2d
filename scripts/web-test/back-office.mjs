// Signs in, creates a group and a guest, credits the guest and checks the balance, scans cards
// into the forms as a keyboard-wedge scanner does, pays at the till through /api/v1 and sees the
// guest's history and the report change, resets a hold left open, in Debian's chromium; a
// screenshot of every page on the way. Fails (exit 1) on the first wrong answer.
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

  await page.goto(base + "/admin/guests");
  check(page.url().endsWith("/admin/login"), "pages need a session");
  await shot("01-login");
  await page.fill("input[name=login]", "owner");
  await page.fill("input[name=password]", "wrong password");
  await page.click("button[type=submit]");
  check((await page.textContent(".error")).includes("Неверный"), "a wrong password is refused");
  await shot("02-login-refused");
  await page.fill("input[name=login]", "owner");
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  check(page.url().endsWith("/admin/guests"), "signed in");
  await shot("03-guests-empty");

  // The seed's pair: 5 % at 500 ₽ (rank 1), 10 % at 1 000 ₽ (rank 2).
  for (const [name, rank, threshold, accrual] of [["Серебро", "1", "500", "5"], ["Золото", "2", "1000", "10"]]) {
    await page.goto(base + "/admin/groups");
    await page.fill("input[name=name]", name);
    await page.fill("input[name=rank]", rank);
    await page.fill("input[name=threshold]", threshold);
    await page.fill("input[name=discount]", "0");
    await page.fill("input[name=accrual]", accrual);
    await page.check("input[name=never_downgrade]");
    await page.click("form.box button[type=submit]");
  }
  check((await page.content()).includes("Золото"), "the groups are listed");
  await shot("04-groups");
  await page.click("text=Золото");
  await shot("05-group-edit");

  await page.goto(base + "/admin/guests/new");
  await page.fill("input[name=name]", "Анна <script>alert(1)</script>");
  await page.fill("input[name=phone]", "+7 916 123-45-67");
  await page.selectOption("select[name=kind]", "card_barcode");
  await page.fill("input[name=card]", "2000000000015");
  await shot("06-guest-new");
  await page.click("form.box button[type=submit]");
  check(/\/admin\/guests\/\d+$/.test(page.url()), "the guest was created: " + page.url());
  check((await page.textContent("h1")).includes("<script>"), "the name is shown as text");
  const guestUrl = page.url();

  await page.selectOption("form.box select[name=kind]", "credit");
  await page.fill("input[name=amount]", "250,50");
  await page.fill("input[name=reason]", "Подарок к открытию");
  await page.click("text=Провести");
  check((await page.textContent("#balance")).replace(/\s/g, "") === "250,50", "the credit shows in the balance");
  await shot("07-guest-credited");

  // A keyboard-wedge scanner: the digits typed fast, then Enter, into the focused field.
  const scan = async (selector, code) => {
    await page.click(selector);
    await page.keyboard.type(code, { delay: 3 });
    await page.keyboard.press("Enter");
  };
  // On the guest's page: Enter sends the small form, the card is added.
  await scan("input[name=value]", "2000000000022");
  await page.waitForURL("**/admin/guests/*?done=identifier");
  check((await page.textContent("main")).includes("2000000000022"), "the scanned card is added to the guest");
  await shot("17-guest-card-scanned");
  // «Бонусные счета»: a corporate account of the same guest, its own page, a card of its own.
  await page.fill("#accounts input[name=name]", "Корпоративный");
  await page.click("#accounts button[type=submit]");
  await page.waitForURL("**/admin/guests/*?done=account");
  check((await page.textContent("h1")).includes("· Корпоративный"), "the account's page names the guest and the account");
  check(!(await page.$("#contact")), "the name and phone are changed on the main account only");
  await scan("input[name=value]", "2000000000046");
  await page.waitForURL("**/admin/guests/*?done=identifier");
  check((await page.textContent("#accounts")).includes("Основной"), "the account links to the main one");
  await shot("20-guest-account");
  await page.goto(guestUrl);
  check((await page.textContent("#accounts")).includes("Корпоративный"), "the main account lists the other");
  await page.fill("#accounts input[name=name]", "Корпоративный");
  await page.click("#accounts button[type=submit]");
  check((await page.textContent(".error")).includes("уже есть счёт «Корпоративный»"), "the same name twice is refused");
  await shot("20-guest-account-refused");
  // On the new guest's form the scan fills the field and sends nothing: name and phone follow.
  await page.goto(base + "/admin/guests/new");
  await scan("input[name=card]", "2000000000039");
  await page.waitForTimeout(300);
  check(page.url().endsWith("/admin/guests/new"), "a scan does not send the half-filled form: " + page.url());
  check((await page.inputValue("input[name=card]")) === "2000000000039", "the scan fills the card field");
  await page.fill("input[name=name]", "Борис");
  await page.fill("input[name=phone]", "+7 916 765-43-21");
  await shot("18-guest-new-scanned");
  await page.click("form.box button[type=submit]");
  check(/\/admin\/guests\/\d+$/.test(page.url()), "the guest with the scanned card is created: " + page.url());
  check((await page.textContent("main")).includes("2000000000039"), "the new guest has the scanned card");

  // The till through /api/v1 with a till token made on «Кассы»: identify the guest by card, a
  // hold paid, a second hold left open; the report's figures before and after.
  const totals = async () => {
    await page.goto(base + "/admin/reports");
    if (await page.$("#empty")) return Array(10).fill(0);
    const cells = await page.$$eval("#total th", (c) => c.slice(2).map((x) => x.textContent.replace(/\s/g, "")));
    return cells.map((c) => (c.includes(",") ? Number(c.replace(",", "")) : Number(c)));
  };
  const before = await totals();
  await page.goto(base + "/admin/tills");
  await page.fill("input[name=till]", "till-pay");
  await page.click("form[action=\"/admin/tills\"] button[type=submit]");
  const payToken = (await page.textContent("#token")).trim();
  const api = async (path, body) => {
    const answer = await fetch(base + path, {
      method: body ? "POST" : "GET",
      headers: { Authorization: `Bearer ${payToken}`, "Content-Type": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: answer.status, body: await answer.json() };
  };
  const guestId = Number(guestUrl.match(/(\d+)$/)[1]);
  const found = await api("/api/v1/identify", { kind: "barcode", payload: "2000000000015" });
  check(found.status === 200 && found.body.card.guest_id === guestId, "the till identifies the guest: " + JSON.stringify(found));
  check(found.body.card.balance === 25050, "the till sees the credit: " + found.body.card.balance);
  const scanned = await api("/api/v1/identify", { kind: "barcode", payload: "2000000000022" });
  check(scanned.status === 200 && scanned.body.card.guest_id === guestId, "the scanned card identifies the guest");
  const check500 = { gift_codes: [], subtotal: 50000 };
  const held = await api("/api/v1/holds", { op_id: "web-hold-1", guest_id: guestId, amount: 10000, check: check500 });
  check(held.status === 200 && held.body.amount === 10000, "a hold: " + JSON.stringify(held));
  const paid = await api("/api/v1/payments", {
    op_id: "web-pay-1", guest_id: guestId, hold_id: held.body.hold_id, spent: 10000, check: check500,
  });
  check(paid.status === 200 && paid.body.spent === 10000 && paid.body.accrued > 0, "paid: " + JSON.stringify(paid));
  check(paid.body.balance_after === 25050 - 10000 + paid.body.accrued, "the balance after: " + paid.body.balance_after);
  const open = await api("/api/v1/holds", {
    op_id: "web-hold-2", guest_id: guestId, amount: 5000, check: { gift_codes: [], subtotal: 30000 },
  });
  check(open.status === 200, "a second hold: " + JSON.stringify(open));
  const money = (k) => (k / 100).toFixed(2).replace(".", ",");
  const figure = async (sel) => (await page.textContent(sel)).replace(/\s/g, "");
  await page.goto(guestUrl);
  check((await figure("#balance")) === money(paid.body.balance_after), "the page shows the balance after the payment");
  check((await figure("#available")) === money(paid.body.balance_after - 5000), "the open hold is not available");
  const row = await page.$$eval("#history tr", (rows) => rows[1].textContent);
  check(row.includes("500,00") && row.includes("till-pay"), "the payment is the history's first row: " + row);
  await shot("19-guest-paid-hold-open");
  await page.click("text=Сбросить холды");
  await page.waitForURL("**?done=holds");
  check((await page.textContent("main")).includes("Открытых холдов нет"), "no hold is left");
  check((await figure("#available")) === (await figure("#balance")), "the whole balance is available again");
  const card = await api(`/api/v1/guests/${guestId}`);
  check(card.body.available === card.body.balance && card.body.balance === paid.body.balance_after, "the till sees the hold gone");
  await shot("19-guest-holds-reset");
  const after = await totals();
  check(after[0] === before[0] + 1, `one more check in the report: ${before} -> ${after}`);
  check(after[1] === before[1] + 50000, `the revenue: ${before} -> ${after}`);
  check(after[2] === before[2] + paid.body.accrued, `the accrual: ${before} -> ${after}`);
  check(after[3] === before[3] + 10000, `the spending: ${before} -> ${after}`);
  await shot("19-reports-after-payment");

  // The same guest's card again: refused with the reason, nothing made.
  await page.goto(base + "/admin/guests/new");
  await page.fill("input[name=name]", "Копия");
  await page.fill("input[name=card]", "2000000000015");
  await page.click("form.box button[type=submit]");
  check((await page.textContent(".error")).includes("другому гостю"), "a duplicate card is refused");
  check(
    (await page.inputValue("input[name=name]")) === "Копия" &&
      (await page.inputValue("input[name=card]")) === "2000000000015",
    "the refused form keeps what was typed",
  );
  await shot("08-duplicate-refused");

  await page.goto(base + "/admin/guests?q=2000000000015");
  check((await page.content()).includes(guestUrl.replace(base, "")), "search by card");
  await shot("09-guests-search");
  await page.goto(base + "/admin/programme");
  // Enrolment at the till: a bad welcome bonus is refused with the reason, a good one is kept.
  await page.fill("input[name=welcome_bonus]", "-5");
  await page.check("input[name=till_enrolment]");
  await page.click("form[action=\"/admin/programme\"] button[type=submit]");
  check((await page.content()).includes("сумма от 0 до 100 000"), "a bad welcome bonus is refused");
  await shot("10-programme-refused");
  await page.goto(base + "/admin/programme");
  await page.fill("input[name=welcome_bonus]", "150,50");
  await page.check("input[name=till_enrolment]");
  await page.click("form[action=\"/admin/programme\"] button[type=submit]");
  await page.waitForURL("**/admin/programme?done=1");
  check(await page.isChecked("input[name=till_enrolment]"), "enrolment at the till is on");
  check((await page.inputValue("input[name=welcome_bonus]")) === "150,50", "the welcome bonus is kept");
  await shot("10-programme");
  // «Кассы»: a till token made (its secret shown once) and revoked; the API refuses it at once.
  await page.goto(base + "/admin/tills");
  await page.fill("input[name=till]", "till-web");
  await page.click("form[action=\"/admin/tills\"] button[type=submit]");
  const token = (await page.textContent("#token")).trim();
  check(token.startsWith("lt_"), "the new till's secret is shown");
  const asTill = () => fetch(base + "/api/v1/till", { headers: { Authorization: `Bearer ${token}` } });
  check((await asTill()).status === 200, "the new token works");
  await shot("14-tills-created");
  await page.goto(base + "/admin/tills");
  check(!(await page.content()).includes(token), "the secret is not shown again");
  await page.click("form[action=\"/admin/tills/till-web/revoke\"] button[type=submit]");
  check((await asTill()).status === 401, "a revoked token is refused at once");
  await shot("15-tills-revoked");
  // «Журнал изменений»: the credit with its reason, the programme, the till token.
  await page.goto(base + "/admin/audit");
  const log = await page.textContent("#audit");
  check(log.includes("Начисление вручную") && log.includes("Токен кассы отозван"), "the audit log lists the changes");
  await shot("16-audit");
  // In a side panel the log's table scrolls inside its box; the page itself does not widen.
  await page.setViewportSize({ width: 420, height: 700 });
  const pageWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  check(pageWidth <= 420, `the audit page fits 420 px (scroll width ${pageWidth})`);
  await shot("16-audit-narrow");
  await page.setViewportSize({ width: 1024, height: 768 });
  await page.goto(guestUrl);
  check((await page.textContent("#changes")).includes("Начисление вручную"), "the guest's page lists its changes");
  await page.goto(base + "/admin/lang/en");
  await page.goto(guestUrl);
  check((await page.content()).includes("Operations history"), "English pages");
  await shot("11-guest-en");

  // A manager: the programme is refused.
  const manager = await (await browser.newContext({ viewport: { width: 1024, height: 768 } })).newPage();
  await manager.goto(base + "/admin/login");
  await manager.fill("input[name=login]", "manager");
  await manager.fill("input[name=password]", password);
  await manager.click("button[type=submit]");
  const refused = await manager.goto(base + "/admin/programme");
  check(refused.status() === 403, "a manager is refused the programme");
  await manager.screenshot({ path: `${shots}/12-manager-refused.png`, fullPage: true });
  // The narrow till-side window.
  await page.setViewportSize({ width: 420, height: 700 });
  await page.goto(guestUrl);
  await shot("13-guest-narrow");
} finally {
  await browser.close();
}
