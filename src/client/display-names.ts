/**
 * The rules for display names, applied on receipt (a join message from another member) as well as
 * when a profile is created: a name is self-chosen and unverified, so it must not be able to hide
 * or reorder text, claim one of the marks the views add, or pass for another member's name
 * (docs/CLI.md "Untrusted text", docs/THREAT-MODEL.md). Every front end gets the same verdicts
 * through the group view (src/client/group-view.ts).
 */

/** A display name is at most this many bytes of UTF-8. */
export const MAX_NAME_BYTES = 64;

/** Controls, format characters (bidi, zero-width), separators, and blank-looking Hangul fillers. */
const HIDING = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u115F\u1160\u3164\uFFA0]/u;

/**
 * What the views append to a name, compared after NFKC and case folding: a name must not claim
 * them (`alice (you)`, `bob [verified]`).
 */
const CLAIMED_MARKS = ['(you)', '[verified]', '[unverified]', '[blocked]', '[look-alike', '⚠', 'malice:'];

export type NameProblem = 'empty' | 'too-long' | 'hidden-characters' | 'claims-mark';

/** Why `name` is not acceptable as a display name, or null when it is. */
export function displayNameProblem(name: string): NameProblem | null {
  if (name.trim().length === 0) return 'empty';
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) return 'too-long';
  if (HIDING.test(name)) return 'hidden-characters';
  const folded = fold(name).replace(/\s+/g, '');
  if (CLAIMED_MARKS.some((mark) => folded.includes(mark.replace(/\s+/g, '')))) return 'claims-mark';
  return null;
}

function fold(s: string): string {
  return s.normalize('NFKC').toLowerCase();
}

/**
 * Letters that look alike in common fonts, mapped to one representative: a small hand-made subset
 * of Unicode's confusables (Cyrillic and Greek letters that look Latin, digits that look like
 * letters). Enough to catch the obvious impersonation; not a claim of completeness.
 */
const CONFUSABLE: Readonly<Record<string, string>> = {
  а: 'a',
  в: 'b',
  е: 'e',
  ё: 'e',
  к: 'k',
  м: 'm',
  н: 'h',
  о: 'o',
  р: 'p',
  с: 'c',
  т: 't',
  у: 'y',
  х: 'x',
  ѕ: 's',
  і: 'l',
  ї: 'l',
  ј: 'j',
  ԁ: 'd',
  ԛ: 'q',
  ԝ: 'w',
  ɡ: 'g',
  ɑ: 'a',
  α: 'a',
  β: 'b',
  ε: 'e',
  η: 'n',
  ι: 'l',
  κ: 'k',
  ν: 'v',
  ο: 'o',
  ρ: 'p',
  τ: 't',
  υ: 'u',
  χ: 'x',
  ω: 'w',
  '0': 'o',
  '1': 'l',
  i: 'l',
  '|': 'l',
  '!': 'l',
  '5': 's',
  $: 's',
  '@': 'a',
};

/**
 * The look-alike skeleton of a name: NFKC, case folded, combining marks and spaces removed,
 * confusable letters mapped, `rn` read as `m` and `vv` as `w`. Two names with the same skeleton
 * are easy to mistake for each other.
 */
export function nameSkeleton(name: string): string {
  const base = fold(name)
    .normalize('NFD')
    .replace(/[\p{M}\s._-]/gu, '');
  return [...base]
    .map((c) => CONFUSABLE[c] ?? c)
    .join('')
    .replace(/rn/g, 'm')
    .replace(/vv/g, 'w');
}

/**
 * For each named member, the addresses of the other members (and of me) whose names look like
 * theirs: same skeleton, exact duplicates included. A name that looks like mine is marked on the
 * other member only; mine never is.
 */
export function lookAlikes(
  members: readonly { readonly address: string; readonly name: string | null; readonly isMe: boolean }[],
): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const named = members.filter((m) => m.name !== null);
  for (const m of named) {
    if (m.isMe) continue;
    const skeleton = nameSkeleton(m.name!);
    const others = named.filter((o) => o.address !== m.address && nameSkeleton(o.name!) === skeleton);
    if (others.length > 0)
      out.set(
        m.address,
        others.map((o) => o.address),
      );
  }
  return out;
}
