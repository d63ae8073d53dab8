/**
 * Hints the CLI prints under an error line (`cwtch-groups: hint: …`), by error reason: what the
 * user can do about it. Presentation, so it lives with the CLI, not with the module that raises
 * the error.
 */

/** Invites (src/group/invite.ts, docs/invites.md). */
export const INVITE_HINTS: Readonly<Record<string, string>> = {
  'invite-prefix': 'an invite starts with "cwtch-groups:invite:"; paste the whole text',
  'invite-version':
    'the invite was made by another version of cwtch-groups; upgrade, or ask for a new invite',
  'invite-checksum': 'the invite was mistyped or cut short; copy it again in one piece',
  'invite-malformed': 'the inviting client produced a broken invite; ask for a new one',
  'invite-expired': 'ask a member for a new invite',
  'invite-epoch-future': "the inviter's clock or ours is wrong; check both clocks",
  'relay-key-mismatch':
    'a relay answers under another identity than the one you pinned; do not join, and compare addresses with the inviter',
};
