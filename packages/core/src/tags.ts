/**
 * Tags: the agent's normalisation (sorted, de-duplicated, `host:` taken out as the host, reserved
 * `dd.internal.*` tags removed) and the interned tag set every context of one host and tags shares.
 */

/** Splits tags into sorted, de-duplicated tags and the `host:` override, removing reserved ones. */
export function normalizeTags(tags: readonly string[], globalTags: readonly string[] = []): { tags: string[]; host: string | undefined } {
  // Clients mostly send tags already sorted and unique: then a copy is the answer, without the Set.
  if (globalTags.length === 0 && isPlainSorted(tags)) return { tags: tags.slice(), host: undefined };
  let host: string | undefined;
  const out = new Set<string>();
  for (const list of [tags, globalTags]) {
    for (const tag of list) {
      if (tag.startsWith('host:')) {
        host = tag.slice(5);
        continue;
      }
      if (tag.startsWith('dd.internal.entity_id:') || tag.startsWith('dd.internal.card:') || tag.startsWith('dd.internal.jmx_check_name:')) continue;
      if (tag.length > 0) out.add(tag);
    }
  }
  return { tags: [...out].sort(), host };
}

/** Whether tags are strictly increasing (sorted, unique), none empty, `host:` or reserved. */
function isPlainSorted(tags: readonly string[]): boolean {
  for (let i = 0; i < tags.length; i++) {
    const tag = tags[i]!;
    if (tag.length === 0 || tag.startsWith('host:') || tag.startsWith('dd.internal.')) return false;
    if (i > 0 && !(tags[i - 1]! < tag)) return false;
  }
  return true;
}

/**
 * An interned (host, sorted tags) pair, shared by every context with the same host and tags while any
 * is alive: one tag array and one set of tag strings for all of them.
 */
export class TagSet {
  /** Live contexts using it. */
  refs = 0;
  /** Next tag set in the same hash chain. */
  next: TagSet | undefined = undefined;

  constructor(
    /** Its hash in the context table's tag-set map. */
    readonly hash: number,
    /** Host of every series of its contexts. */
    readonly host: string,
    /** The tags joined with `,`. */
    readonly joined: string,
    /** Normalised tags; the same array in every window while the set lives. */
    readonly tags: readonly string[],
  ) {}
}
