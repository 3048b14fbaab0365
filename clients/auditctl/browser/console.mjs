// Drives the reviewer's console in a real browser (Debian's Chromium, headless, through
// playwright-core) as a reviewer and a citizen would: sign in, search a persona, open a record
// and its place in the chain, the verification page, the misuse report after a burst of
// refusals, the citizen's own page, the language switch, and a search outside the auditor's
// scope. Each step saves a screenshot and checks the page's text at that moment.
//
//   node console.mjs --console http://127.0.0.1:PORT --out DIR \
//       --persona 042188999005 --other-unit 000.00.00.H56
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, v, i, all) => (i % 2 ? pairs : [...pairs, [v.replace(/^--/, ''), all[i + 1]]]), []),
);
const base = args.console;
const out = args.out;
mkdirSync(out, { recursive: true });

let failures = 0;
function check(step, condition, detail) {
  if (condition) {
    console.log(`ok   ${step}`);
  } else {
    failures += 1;
    console.log(`FAIL ${step}: ${detail}`);
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  const text = async () => page.locator('body').innerText();
  const shot = async (name) => page.screenshot({ path: join(out, `${name}.png`), fullPage: true });

  // Sign in as the province's sample auditor.
  await page.goto(`${base}/`);
  check('sign-in page first', page.url().endsWith('/login'), page.url());
  await page.getByRole('button', { name: 'CB.H42.KT01' }).click();
  check('signed in', (await page.locator('#officer').innerText()) === 'CB.H42.KT01', await text());

  // Search a persona by personal ID.
  await page.fill('input[name=personal_id]', args.persona);
  await page.getByRole('button', { name: 'Tìm' }).click();
  await page.waitForSelector('#results');
  let body = await text();
  await shot('1-search');
  check('search finds the persona\'s accesses', body.includes('LookupCitizen') && body.includes('042•••••••005'), body);
  check('no other province in the results', !body.includes(args['other-unit']), body);
  check('the personal ID is not in the URL', !page.url().includes(args.persona), page.url());

  // Open a record: every field, the receipt, its place in the chain.
  await page.locator('table a[href^="/record/"]').first().click();
  await page.waitForSelector('#standing');
  body = await text();
  await shot('2-record');
  check('record page shows the chain standing', /Nguyên vẹn/.test(await page.locator('#standing').innerText()), body);
  check('record page shows the receipt', body.includes('prev_hash') && body.includes('hash'), body);

  // The verification page, in words.
  await page.getByRole('link', { name: 'Kiểm tra chuỗi' }).click();
  await page.waitForSelector('#verdict');
  const verdict = await page.locator('#verdict').innerText();
  await shot('3-verify');
  check('chain verifies', /khớp nhau/.test(verdict) && !(await page.locator('#verdict.broken').count()), verdict);

  // The misuse report after the scripted burst of refusals.
  await page.goto(`${base}/report?days=1&officer=CB.H42.0001`);
  await page.waitForSelector('#signals');
  body = await text();
  await shot('4-report');
  check('the refusal burst is reported', (await page.locator('[data-kind="refusal-burst"]').count()) > 0, body);
  check('charts are drawn', (await page.locator('figure.chart svg').count()) >= 2, body);
  const evidence = page.locator('[data-kind="refusal-burst"] a[href^="/record/"]').first();
  await evidence.click();
  await page.waitForSelector('#standing');
  check('evidence opens its record', (await text()).includes('UNKNOWN_PROCEDURE'), await text());

  // Outside the scope: another province by name.
  await page.goto(`${base}/`);
  await page.fill('input[name=unit]', args['other-unit']);
  await page.getByRole('button', { name: 'Tìm' }).click();
  await page.waitForSelector('#refused');
  body = await text();
  await shot('5-scope');
  check('another province is refused', body.includes('AUDIT_SCOPE'), body);

  // English on request.
  await page.getByRole('link', { name: 'English' }).click();
  body = await text();
  check('English switch', body.includes('Audit review console'), body);
  await page.getByRole('link', { name: 'Tiếng Việt' }).click();

  // The citizen's own page.
  const citizen = await (await browser.newContext({ viewport: { width: 1280, height: 700 } })).newPage();
  await citizen.goto(`${base}/citizen`);
  await citizen.fill('input[name=personal_id]', args.persona);
  await citizen.locator('form[action="/citizen/login/dev"] button').click();
  await citizen.waitForSelector('#accesses');
  body = await citizen.locator('body').innerText();
  await citizen.screenshot({ path: join(out, '6-citizen.png'), fullPage: true });
  check('the citizen sees the accesses to her data', body.includes('LookupCitizen') && body.includes('000.00.00.H42'), body);
  check('and the other province\'s access to her', body.includes(args['other-unit']), body);
  check('never the officers\' addresses', !body.includes('127.0.0.1'), body);
} finally {
  await browser.close();
}
if (failures > 0) {
  console.log(`${failures} check(s) failed; screenshots in ${out}`);
  process.exit(1);
}
console.log(`every check passed; screenshots in ${out}`);
