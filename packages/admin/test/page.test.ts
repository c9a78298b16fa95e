import { createHash } from 'node:crypto';
import { Script } from 'node:vm';
import t from 'tap';
import { PAGE_CSP, PAGE_HTML } from '../src/page.js';
import { PAGE_SCRIPT } from '../src/page-script.js';

t.test('the inline script parses, and the CSP allows exactly it', async (t) => {
  // Compiled, never run: a syntax error shows here even without a browser.
  t.doesNotThrow(() => new Script(PAGE_SCRIPT, { filename: 'page-script.js' }));
  const hash = createHash('sha256').update(PAGE_SCRIPT, 'utf8').digest('base64');
  t.match(PAGE_CSP, `script-src 'sha256-${hash}'`);
  t.ok(PAGE_HTML.includes(`<script>${PAGE_SCRIPT}</script>`), 'the hashed text is exactly what is inlined');
  const style = /<style>([\s\S]*?)<\/style>/.exec(PAGE_HTML)![1]!;
  t.match(PAGE_CSP, `style-src 'sha256-${createHash('sha256').update(style, 'utf8').digest('base64')}'`);
});

t.test('the page is self-contained and never builds markup from data', async (t) => {
  t.notMatch(PAGE_HTML, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'no URL but the SVG namespace');
  t.notMatch(PAGE_SCRIPT, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/, 'values go in as text');
  t.match(PAGE_SCRIPT, "new EventSource('api/events')", 'relative URLs, so a path prefix in a proxy works');
  t.ok(PAGE_HTML.length < 40_000, `page is ${PAGE_HTML.length} bytes`);
});
