/**
 * Template expansion with Go's `regexp.Expand` rules, which the agent's mapper uses: `$1` and `${1}`
 * are groups, `$name`/`${name}` named groups, `$$` a literal `$`. As in Go, a name is the longest run
 * of letters, digits and `_`, so `$1_total` means the group named `1_total` (empty): the agent's docs
 * write `${1}_total` for that reason, and a pasted config must expand the same here.
 */

/** One piece of a compiled template: literal text, or a group by number or name. */
type Piece = string | { readonly group: number } | { readonly named: string };

/** A template compiled once at start-up, expanded per new metric name (never per line). */
export class Template {
  private readonly pieces: readonly Piece[];
  /** True when the template has no `$` reference, so expansion is the text itself. */
  readonly constant: boolean;

  constructor(readonly source: string) {
    this.pieces = compile(source);
    this.constant = this.pieces.every((p) => typeof p === 'string');
  }

  /** The group numbers and names the template refers to, so a config can be checked against its pattern. */
  references(): { groups: number[]; names: string[] } {
    const groups: number[] = [];
    const names: string[] = [];
    for (const p of this.pieces) {
      if (typeof p === 'string') continue;
      if ('group' in p) groups.push(p.group);
      else names.push(p.named);
    }
    return { groups, names };
  }

  /** The text with each reference replaced by its group of `match` (empty when absent). */
  expand(match: RegExpExecArray): string {
    let out = '';
    for (const p of this.pieces) {
      if (typeof p === 'string') out += p;
      else if ('group' in p) out += match[p.group] ?? '';
      else out += match.groups?.[p.named] ?? '';
    }
    return out;
  }
}

function isNameChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
}

function reference(name: string): Piece {
  return /^[0-9]+$/.test(name) ? { group: Number(name) } : { named: name };
}

function compile(src: string): Piece[] {
  const pieces: Piece[] = [];
  let lit = '';
  let i = 0;
  while (i < src.length) {
    const c = src.charCodeAt(i);
    if (c !== 0x24 /* $ */) {
      lit += src[i];
      i++;
      continue;
    }
    if (src.charCodeAt(i + 1) === 0x24) {
      lit += '$';
      i += 2;
      continue;
    }
    let name = '';
    let next = i + 1;
    if (src.charCodeAt(next) === 0x7b /* { */) {
      const close = src.indexOf('}', next + 1);
      const inner = close === -1 ? '' : src.slice(next + 1, close);
      if (inner !== '' && [...inner].every((ch) => isNameChar(ch.charCodeAt(0)))) {
        name = inner;
        next = close + 1;
      }
    } else {
      let j = next;
      while (j < src.length && isNameChar(src.charCodeAt(j))) j++;
      name = src.slice(next, j);
      next = j;
    }
    if (name === '') {
      // Go treats a malformed reference as raw text.
      lit += '$';
      i++;
      continue;
    }
    if (lit !== '') pieces.push(lit);
    lit = '';
    pieces.push(reference(name));
    i = next;
  }
  if (lit !== '') pieces.push(lit);
  return pieces;
}
