// The till's settings page ({base}/settings) in Debian's chromium against the real till: a
// wrong PIN refused, the right one signs in, a bad port refused next to its field, then the brand
// name, the bonus payment type, a gift's item code and the log level saved. The shell around it
// reads config.toml back and checks the till's window took the new name. Screenshots on the way.
import { createRequire } from "node:module";
const require = createRequire(process.env.NODE_PATH + "/");
const { chromium } = require("playwright-core");

const url = process.env.SETTINGS_URL;
const shots = process.env.SHOTS;
const pin = process.env.SETTINGS_PIN;
const brand = process.env.NEW_BRAND;

function check(condition, what) {
  if (!condition) {
    throw new Error("web-test settings: " + what);
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

  await page.goto(url);
  check((await page.locator("input[name=port]").count()) === 0, "nothing shown before the PIN");
  await page.fill("input[name=pin]", "0000");
  await page.click("button[type=submit]");
  check((await page.textContent(".error")).includes("Неверный PIN"), "a wrong PIN is refused");
  await shot("settings-01-wrong-pin");
  await page.fill("input[name=pin]", pin);
  await page.click("button[type=submit]");
  check((await page.locator("input[name=port]").count()) === 1, "signed in");
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "gmb_settings");
  check(session && session.httpOnly && session.sameSite === "Strict", "the session cookie is HttpOnly, SameSite=Strict");
  check((await page.textContent("#iiko")).includes("Money To Be Accounted For By Waiter"), "the iiko note is there");
  await shot("settings-02-form");

  // A port out of range: the message beside the field, nothing saved.
  await page.fill("input[name=port]", "70000");
  await page.fill("input[name=path]", "GetMeBack");
  await page.click("form[method=post] >> text=Сохранить");
  check((await page.textContent("#invalid_port")).includes("от 1 до 65535"), "the port is refused beside its field");
  check((await page.textContent("#invalid_path")).includes("начинается с «/»"), "the path is refused beside its field");
  check((await page.textContent("#not_saved")).includes("не изменён"), "the page says nothing was saved");
  await shot("settings-03-bad-port");

  await page.fill("input[name=port]", process.env.TILL_PORT);
  await page.fill("input[name=path]", "/GetMeBack");
  await page.fill("input[name=program_name]", brand);
  await page.fill("input[name=bonus_payment_type]", "9b2f6a1e-3c4d-4e5f-8a9b-0c1d2e3f4a5b");
  await page.fill("input[name=gift_name_1]", "Десерт дня");
  await page.fill("input[name=gift_code_1]", "00456");
  await page.selectOption("select[name=log_level]", "debug");
  await page.click("form[method=post] >> text=Сохранить");
  const saved = await page.textContent("#saved");
  check(saved.includes("Сохранено в config.toml"), "saved: " + saved);
  check(saved.includes("Применено сразу") && saved.includes("название"), "the name is applied at once: " + saved);
  check(await page.inputValue("input[name=program_name]") === brand, "the form shows the saved name");
  await shot("settings-04-saved");
  await page.setViewportSize({ width: 420, height: 700 });
  await shot("settings-05-narrow");
} finally {
  await browser.close();
}
