// «Бонусы и подарки» in Debian's chromium, after back-office.mjs (its guest with card
// 2000000000015 is there): a stamp card, a promotion and a gift defined (bad input refused with
// the reason), a gift code issued to the guest, and the printable gift and guest QR pages. Their
// screenshots are then read by the till's own decoder (`decode-image`), checked by the till's own
// parser with the programme's key (`parse-scan`), and the code they carry identifies the guest
// and the gift through the server's API.
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
const require = createRequire(process.env.NODE_PATH + "/");
const { chromium } = require("playwright-core");

const base = process.env.BASE_URL;
const shots = process.env.SHOTS;
const password = process.env.PASSWORD;
const bin = process.env.BIN;
const tillDir = process.env.TILL_DIR;
const tillToken = process.env.TILL_TOKEN;

function check(condition, what) {
  if (!condition) {
    throw new Error("web-test (rewards): " + what);
  }
}

/// The till reads the QR code in a screenshot, checks its signature, and names what it carries.
function scan(png) {
  const decoded = JSON.parse(execFileSync(bin, ["decode-image", png], { encoding: "utf8" }).trim());
  check(typeof decoded.text === "string", "the till's decoder reads " + png);
  const parsed = JSON.parse(
    execFileSync(bin, ["--data-dir", tillDir, "parse-scan"], { input: decoded.text + "\r\n", encoding: "utf8" }).trim(),
  );
  check(!parsed.error, "the till verifies the token of " + png + ": " + parsed.error);
  return { text: decoded.text, parsed };
}

async function identify(code) {
  const answer = await fetch(base + "/api/v1/identify", {
    method: "POST",
    headers: { Authorization: `Bearer ${tillToken}`, "Content-Type": "application/json" },
    body: JSON.stringify({ kind: "qr", payload: code }),
  });
  check(answer.status === 200, "identify answers " + answer.status);
  return answer.json();
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
  const page = await context.newPage();
  const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  await page.goto(base + "/admin/login");
  await page.fill("input[name=login]", "owner");
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  check(page.url().endsWith("/admin/guests"), "signed in");

  // A stamp card; one with no stamps needed is refused with the reason.
  const cardForm = 'form[action="/admin/rewards/stamp-cards"]';
  await page.goto(base + "/admin/rewards");
  await page.fill(`${cardForm} input[name=name]`, "Кофе");
  await page.fill(`${cardForm} input[name=needed]`, "0");
  await page.fill(`${cardForm} input[name=reward]`, "Шестой кофе в подарок");
  await page.click(`${cardForm} button[type=submit]`);
  check((await page.textContent(".error")).includes("Штампов до награды"), "0 stamps is refused");
  await shot("20-rewards-refused");
  await page.goto(base + "/admin/rewards");
  await page.fill(`${cardForm} input[name=name]`, "Кофе");
  await page.fill(`${cardForm} input[name=needed]`, "6");
  await page.fill(`${cardForm} input[name=reward]`, "Шестой кофе в подарок");
  await page.click(`${cardForm} button[type=submit]`);
  await page.waitForURL("**/admin/rewards?done=1");

  // A promotion on weekdays, 12:00–16:00; an end before the start is refused.
  const promoForm = 'form[action="/admin/rewards/promotions"]';
  const promotion = async (starts, ends) => {
    await page.goto(base + "/admin/rewards");
    await page.fill(`${promoForm} input[name=name]`, "Бизнес-ланч");
    await page.fill(`${promoForm} input[name=description]`, "Суп и второе за 390 ₽");
    await page.fill(`${promoForm} input[name=starts]`, starts);
    await page.fill(`${promoForm} input[name=ends]`, ends);
    await page.uncheck(`${promoForm} input[name=wd5]`);
    await page.uncheck(`${promoForm} input[name=wd6]`);
    await page.fill(`${promoForm} input[name=from]`, "12:00");
    await page.fill(`${promoForm} input[name=to]`, "16:00");
    await page.click(`${promoForm} button[type=submit]`);
  };
  await promotion("2026-02-01T00:00", "2026-01-01T00:00");
  check((await page.textContent(".error")).includes("позже её начала"), "an end before the start is refused");
  await promotion("2026-01-01T00:00", "2027-12-31T23:59");
  await page.waitForURL("**/admin/rewards?done=1");

  // Gifts: a POS item code taken twice is refused.
  const giftForm = 'form[action="/admin/rewards/gifts"]';
  const gift = async (name, pos, points) => {
    await page.goto(base + "/admin/rewards");
    await page.fill(`${giftForm} input[name=name]`, name);
    await page.fill(`${giftForm} input[name=pos_code]`, pos);
    await page.fill(`${giftForm} input[name=points]`, points);
    await page.click(`${giftForm} button[type=submit]`);
  };
  await gift("Капучино", "1001", "150");
  await page.waitForURL("**/admin/rewards?done=1");
  await gift("Латте", "1001", "200");
  check((await page.textContent(".error")).includes("уже у другого подарка"), "a POS code taken twice is refused");
  await gift("Десерт дня", "2002", "250");
  await page.waitForURL("**/admin/rewards?done=1");
  const defined = await page.content();
  check(defined.includes("Бизнес-ланч") && defined.includes("Пн, Вт, Ср, Чт, Пт") && defined.includes("12:00–16:00"), "the promotion is listed");
  check(defined.includes("Шестой кофе в подарок") && defined.includes("Десерт дня"), "the card and gifts are listed");
  await shot("21-rewards");
  await page.setViewportSize({ width: 420, height: 700 });
  await shot("21-rewards-narrow");
  await page.setViewportSize({ width: 1024, height: 768 });

  // The guest: a gift code issued, then the printable gift QR.
  await page.goto(base + "/admin/guests?q=2000000000015");
  await page.click("table a");
  const guestId = page.url().split("/").pop();
  await page.click("#rewards-link");
  await page.selectOption("select[name=gift]", { label: "Капучино — 150,00" });
  await page.click('form[action$="/gift-codes"] button[type=submit]');
  check((await page.textContent("[role=status]")).includes("выдан"), "the gift code was issued");
  const code = (await page.textContent("#gift-codes code")).trim();
  await shot("22-guest-rewards");
  await page.click("text=QR для печати");
  check((await page.textContent("#what")).includes("Капучино"), "the gift's page names the gift");
  check((await page.textContent("#who")).includes("+7 *** ***-45-67"), "the phone is masked");
  await page.locator("#ticket").screenshot({ path: `${shots}/23-gift-qr.png` });
  await shot("23-gift-qr-page");
  await page.emulateMedia({ media: "print" });
  await shot("24-gift-qr-print");
  await page.emulateMedia({ media: "screen" });

  await page.goto(`${base}/admin/guests/${guestId}/qr`);
  await page.locator("#ticket").screenshot({ path: `${shots}/25-guest-qr.png` });
  await shot("25-guest-qr-page");

  // What the till makes of the printed codes.
  const giftScan = scan(`${shots}/23-gift-qr.png`);
  check(giftScan.parsed.kind === "qr" && giftScan.text.startsWith("GMB1G."), "a gift token: " + JSON.stringify(giftScan.parsed));
  const giftCode = giftScan.text.split(".")[2];
  check(giftCode === code, "the token carries the issued code");
  const byGift = await identify(giftCode);
  check(byGift.card.guest_id === Number(guestId), "the gift's token identifies the guest");
  check(byGift.gift && byGift.gift.name === "Капучино" && byGift.gift.points === 15000, "and gives the gift");
  const guestScan = scan(`${shots}/25-guest-qr.png`);
  check(guestScan.text.startsWith("GMB1.") && guestScan.text.split(".")[1] === "2000000000015", "a guest token of the card");
  const byGuest = await identify(guestScan.text.split(".")[1]);
  check(byGuest.card.guest_id === Number(guestId) && !byGuest.gift, "the guest's token identifies the guest");
  check(byGuest.card.stamps.some((s) => s.card_name === "Кофе" && s.needed === 6), "the till's card shows the stamp card");

  await page.goto(base + "/admin/lang/en");
  await page.goto(base + "/admin/rewards");
  check((await page.textContent("h1")).includes("Rewards and gifts"), "English pages");
  await shot("26-rewards-en");
  await page.goto(base + "/admin/lang/ru");

  await page.goto(base + "/admin/audit");
  const log = await page.textContent("#audit");
  check(log.includes("Новая штамп-карта") && log.includes("Выдан код подарка") && log.includes("Новый подарок"), "the audit log lists the definitions");
} finally {
  await browser.close();
}
