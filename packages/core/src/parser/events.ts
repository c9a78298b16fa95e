/** Events (`_e{…}`) and service checks (`_sc|…`): rare lines, so parsed into objects with strings. */
import type { AlertType, ServiceCheck, ServiceCheckStatus, StatsdEvent } from '../model.js';
import { COLON, COMMA, D0, HASH, PIPE, equalsAscii, indexOfByte, parseGoInt } from './bytes.js';

function decodeText(buf: Buffer, s: number, e: number): string {
  // The agent turns the two bytes `\` `n` into a newline (cleanEventText).
  return buf.toString('utf8', s, e).replaceAll('\\n', '\n');
}

function decodeTags(buf: Buffer, s: number, e: number): string[] {
  return s < e ? buf.toString('utf8', s, e).split(',') : [];
}

/**
 * Walks the `|`-separated fields of an event or a check from `p`: `#tags` and `d:` (timestamp) are set
 * on `item`, `h:` is returned as the host ('' when absent), and any other `x:value` field goes to
 * `other(x, valueStart, valueEnd)`.
 */
function commonFields(buf: Buffer, p: number, e: number, item: { tags: string[]; timestampS: number }, other: (c: number, vs: number, ve: number) => void): string {
  let host = '';
  while (p < e) {
    let q = indexOfByte(buf, PIPE, p, e);
    if (q < 0) q = e;
    const c = buf[p];
    if (c === HASH) {
      item.tags = decodeTags(buf, p + 1, q);
    } else if (q - p >= 2 && buf[p + 1] === COLON) {
      if (c === 0x64) {
        const ts = parseGoInt(buf, p + 2, q);
        if (!Number.isNaN(ts)) item.timestampS = ts;
      } else if (c === 0x68) {
        host = buf.toString('utf8', p + 2, q);
      } else if (c !== undefined) {
        other(c, p + 2, q);
      }
    }
    p = q + 1;
  }
  return host;
}

/** Parses an `_e{…}` line; null when the agent would reject it. */
export function parseEvent(buf: Buffer, s: number, e: number): StatsdEvent | null {
  const colon = indexOfByte(buf, COLON, s, e);
  if (colon < 0 || colon - s < 7) return null;
  // As in the agent, the closing `}` is dropped without being checked.
  const lenStart = s + 3;
  const lenEnd = colon - 1;
  const comma = indexOfByte(buf, COMMA, lenStart, lenEnd);
  if (comma < 0) return null;
  const titleLen = parseGoInt(buf, lenStart, comma);
  if (!(titleLen >= 1)) return null;
  const textLen = parseGoInt(buf, comma + 1, lenEnd);
  if (!(textLen >= 0)) return null;
  // Lengths are UTF-8 byte counts, so everything below slices the Buffer, not a decoded string.
  const r = colon + 1;
  const contentEnd = r + titleLen + 1 + textLen;
  if (contentEnd > e) return null;
  const event: StatsdEvent = {
    title: decodeText(buf, r, r + titleLen),
    // The byte between title and text is the separator; the agent skips it without checking.
    text: decodeText(buf, r + titleLen + 1, contentEnd),
    timestampS: 0,
    priority: 'normal',
    alertType: 'info',
    tags: [],
  };
  let aggregationKey = '';
  let sourceType = '';
  // Fields start right at contentEnd (normally a `|`, giving an empty first field); a bad value only
  // leaves the previous one in place, the event is kept.
  const host = commonFields(buf, contentEnd, e, event, (c, vs, ve) => {
    if (c === 0x6b) {
      aggregationKey = buf.toString('utf8', vs, ve);
    } else if (c === 0x70) {
      if (equalsAscii(buf, vs, ve, 'normal')) event.priority = 'normal';
      else if (equalsAscii(buf, vs, ve, 'low')) event.priority = 'low';
    } else if (c === 0x73) {
      sourceType = buf.toString('utf8', vs, ve);
    } else if (c === 0x74) {
      const at = alertTypeOf(buf, vs, ve);
      if (at !== null) event.alertType = at;
    }
  });
  // Go has no "absent" string: an empty `h:`/`k:`/`s:` means unset there, so it is omitted here.
  if (host !== '') event.host = host;
  if (aggregationKey !== '') event.aggregationKey = aggregationKey;
  if (sourceType !== '') event.sourceType = sourceType;
  return event;
}

function alertTypeOf(buf: Buffer, s: number, e: number): AlertType | null {
  if (equalsAscii(buf, s, e, 'error')) return 'error';
  if (equalsAscii(buf, s, e, 'warning')) return 'warning';
  if (equalsAscii(buf, s, e, 'info')) return 'info';
  if (equalsAscii(buf, s, e, 'success')) return 'success';
  return null;
}

/** Parses an `_sc|…` line; null when the agent would reject it. */
export function parseServiceCheck(buf: Buffer, s: number, e: number): ServiceCheck | null {
  if (e - s < 4) return null;
  let pipes = 0;
  for (let i = s; i < e && pipes < 2; i++) if (buf[i] === PIPE) pipes++;
  if (pipes < 2) return null;
  // The agent drops the first 4 bytes (`_sc|`) without checking them.
  const nameStart = s + 4;
  let nameEnd = indexOfByte(buf, PIPE, nameStart, e);
  if (nameEnd < 0) nameEnd = e;
  if (nameEnd === nameStart) return null;
  if (nameEnd >= e) return null; // no status field
  const stStart = nameEnd + 1;
  let stEnd = indexOfByte(buf, PIPE, stStart, e);
  if (stEnd < 0) stEnd = e;
  const sc0 = buf[stStart];
  if (stEnd - stStart !== 1 || sc0 === undefined || sc0 < D0 || sc0 > 0x33) return null;
  const check: ServiceCheck = {
    name: buf.toString('utf8', nameStart, nameEnd),
    status: (sc0 - D0) as ServiceCheckStatus,
    timestampS: 0,
    tags: [],
  };
  let message = '';
  const host = commonFields(buf, stEnd + 1, e, check, (c, vs, ve) => {
    // Agent parity: the message ends at the next `|` (`m:a|b` → `a`); the rest is an unknown field.
    if (c === 0x6d) message = buf.toString('utf8', vs, ve);
  });
  if (host !== '') check.host = host;
  if (message !== '') check.message = message;
  return check;
}
