/**
 * The marks the text views put after a member's name (policy standing, malice, look-alike names):
 * pure formatting, shared by `read`, `group members` and the chat.
 */

/** `  [look-alike of ADDR8, …]` for a member whose name looks like others' (src/client/display-names.ts). */
export function lookAlikeMark(addresses: readonly string[]): string {
  return addresses.length === 0 ? '' : `  [look-alike of ${addresses.map((a) => a.slice(0, 8)).join(', ')}]`;
}

/** `  [unverified] [blocked] ⚠ malice: equivocation` for the text views. */
export function formatMarks(m: { status: string; blocked: boolean; malice: readonly string[] }): string {
  const parts: string[] = [];
  if (m.status === 'unverified') parts.push('[unverified]');
  if (m.status === 'verified') parts.push('[verified]');
  if (m.blocked) parts.push('[blocked]');
  if (m.malice.length > 0) parts.push(`⚠ malice: ${m.malice.join(', ')}`);
  return parts.length === 0 ? '' : `  ${parts.join(' ')}`;
}
