// Signs in, creates a group and a guest, credits the guest and checks the balance, in Debian's
// chromium; a screenshot of every page on the way. Fails (exit 1) on the first wrong answer.
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

  // The same guest's card again: refused with the reason, nothing made.
  await page.goto(base + "/admin/guests/new");
  await page.fill("input[name=name]", "Копия");
  await page.fill("input[name=card]", "2000000000015");
  await page.click("form.box button[type=submit]");
  check((await page.textContent(".error")).includes("другому гостю"), "a duplicate card is refused");
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
