// The guests' CSV import and export in Debian's chromium, after back-office.mjs made the groups:
// a file with bad rows (every row listed with its line and reason, nothing offered to import),
// a good Windows-1251 file previewed and imported, the guest found by phone, the export
// downloaded. A screenshot of each page. Fails (exit 1) on the first wrong answer.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
const require = createRequire(process.env.NODE_PATH + "/");
const { chromium } = require("playwright-core");

const base = process.env.BASE_URL;
const shots = process.env.SHOTS;
const password = process.env.PASSWORD;

function check(condition, what) {
  if (!condition) {
    throw new Error("web-test (import): " + what);
  }
}

// Windows-1251 by hand: Node has no encoder for it. Cyrillic А..я are 0xC0..0xFF, Ё 0xA8, ё 0xB8.
function cp1251(text) {
  const bytes = [];
  for (const ch of text) {
    const c = ch.codePointAt(0);
    if (c < 0x80) bytes.push(c);
    else if (c >= 0x410 && c <= 0x44f) bytes.push(c - 0x410 + 0xc0);
    else if (c === 0x401) bytes.push(0xa8);
    else if (c === 0x451) bytes.push(0xb8);
    else throw new Error("not in Windows-1251: " + ch);
  }
  return Buffer.from(bytes);
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 }, acceptDownloads: true });
  const page = await context.newPage();
  const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  await page.goto(base + "/admin/login");
  await page.fill("input[name=login]", "owner");
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.click("#import");
  check(page.url().endsWith("/admin/guests/import"), "the guests page links the import");
  await shot("20-import-upload");

  const bad =
    "имя;телефон;карта;тип карты;группа;баланс\r\n" +
    "Ирина Котова;+7 901 555-00-01;IMP-WEB-1;;Серебро;1200,50\r\n" +
    "Олег;12345;;;Серебро;10\r\n" +
    "Нина;+7 901 555-00-03;;;Платина;0\r\n" +
    "Лев;+7 901 555-00-04;;;Серебро;-5\r\n" +
    "Дубль;8 901 555 00 01;;;Серебро;1\r\n" +
    "Мало;столбцов\r\n";
  await page.setInputFiles("#file", { name: "guests-bad.csv", mimeType: "text/csv", buffer: Buffer.from(bad) });
  await page.click("form.box button[type=submit]");
  const rejected = await page.textContent("#rejected");
  for (const why of ["Телефон не похож", "Такой группы нет", "Баланс отрицательный", "уже есть в строке 2", "Столбцов 2"]) {
    check(rejected.includes(why), "refused with the reason: " + why);
  }
  check((await page.locator("form[action='/admin/guests/import/confirm']").count()) === 0, "no import while a row is wrong");
  await shot("21-import-preview-rejected");
  // Every refused row as a file, downloaded by its link.
  const [rejectedFile] = await Promise.all([page.waitForEvent("download"), page.click("#rejected-csv")]);
  const listed = readFileSync(await rejectedFile.path(), "utf8").trim().split(/\r?\n/);
  check(listed.length === 1 + 5, `the list of refused rows has all five (${listed.length - 1})`);
  check(listed[1].startsWith("3;") && listed[1].includes("Телефон не похож"), "each with its line and reason");

  await page.goto(base + "/admin/guests/import");
  const good =
    "Ирина Котова;+7 901 555-00-01;IMP-WEB-1;;Серебро;1200,50\r\n" +
    "Пётр Ёлкин;8 901 555 00 02;;;Золото;75\r\n" +
    "Зоя;;IMP-WEB-3|IMP-WEB-4;manual_code|app_qr;Серебро;\r\n";
  await page.setInputFiles("#file", { name: "guests-1251.csv", mimeType: "text/csv", buffer: cp1251(good) });
  await page.click("form.box button[type=submit]");
  check((await page.textContent("#summary")).includes("Windows-1251"), "the encoding is detected");
  check((await page.textContent("#rows")).includes("3"), "three rows read");
  check((await page.textContent("#first-rows")).includes("Пётр Ёлкин"), "the first rows as read");
  await shot("22-import-preview");
  await page.setViewportSize({ width: 420, height: 700 });
  await shot("22-import-preview-narrow");
  await page.setViewportSize({ width: 1024, height: 768 });
  await page.click("form[action='/admin/guests/import/confirm'] button[type=submit]");
  check((await page.textContent("#imported")).includes("Импортировано гостей: 3"), "imported");
  await shot("23-import-done");

  await page.goto(base + "/admin/guests?q=" + encodeURIComponent("+7 901 555-00-01"));
  check((await page.content()).includes("Ирина Котова"), "the imported guest is found by phone");
  await page.click("text=Ирина Котова");
  check((await page.textContent("#balance")).replace(/\s/g, "") === "1200,50", "the opening balance");
  check((await page.textContent("#changes")).includes("Импорт гостя"), "the import is in the guest's audit");
  await shot("24-imported-guest");

  await page.goto(base + "/admin/guests/import");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export a")]);
  const bytes = readFileSync(await download.path());
  check(bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf, "the export starts with a BOM");
  const text = bytes.toString("utf8");
  check(text.includes("имя;телефон;карта;тип карты;группа;баланс"), "the export's header");
  check(text.includes("Ирина Котова;+79015550001;IMP-WEB-1;card_barcode;Серебро;1200,50"), "a guest in full");
  check(download.suggestedFilename().endsWith(".csv"), "a CSV file name");
} finally {
  await browser.close();
}
