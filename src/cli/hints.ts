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

/** Forks (src/client/forks/forks.ts raises them). */
export const FORK_HINTS: Readonly<Record<string, string>> = {
  'unknown-member':
    'name a member by address, a unique address prefix or display name, as `cwtch-groups group members GROUP` prints them',
  'ambiguous-member': 'give more characters of the address',
  'unknown-fork': 'list the forks of a group with: cwtch-groups group forks GROUP',
  'ambiguous-fork': 'give more hex digits of the announcement id',
  'fork-not-pending': 'see its status with: cwtch-groups group forks GROUP',
  'fork-too-small': 'a fork needs at least one other member',
  'fork-too-large': 'a fork holds at most 48 members; fork into several groups',
  'group-left':
    'you left it: its keys are erased and it is never synced; `cwtch-groups group list --all` shows it, `cwtch-groups read GROUP` its old messages',
  'group-replaced':
    'send to the fork instead (`cwtch-groups group list` shows it), or add --force to write to the old group anyway',
};

/** Profiles (src/client/store/profile-store.ts raises them). */
export const PROFILE_HINTS: Readonly<Record<string, string>> = {
  'profile-missing': 'create a profile first, or point --home / CWTCH_GROUPS_HOME at an existing one',
  'profile-exists': 'open the existing profile, or choose another --home',
  'profile-foreign': 'the file is not a cwtch-groups profile; check --home / CWTCH_GROUPS_HOME',
  'profile-too-new': 'a newer cwtch-groups wrote this profile: upgrade cwtch-groups to open it',
  'profile-corrupt': 'restore the profile directory from a backup',
  'profile-locked': 'another cwtch-groups process is writing the profile; retry in a moment',
  'profile-in-use':
    'close the other cwtch-groups processes of this profile (watch, app, chat), then run it again',
  'wrong-passphrase': 'passphrases are case-sensitive; nothing was changed',
  'empty-passphrase': 'choose a non-empty passphrase',
  'profile-record-tampered': 'the profile file was modified outside cwtch-groups; restore it from a backup',
  'profile-append-gap': 'the profile file was modified outside cwtch-groups; restore it from a backup',
  'profile-keyring-changed': 'another process changed the passphrase meanwhile; open the profile again',
};

/** Running a relay (src/relay/server.ts raises them). */
export const RELAY_HINTS: Readonly<Record<string, string>> = {
  'listen-failed':
    'another program, perhaps a relay started earlier (`npm start`), holds that address: stop it, or choose another port with --listen 127.0.0.1:PORT (`npm start -- --listen 127.0.0.1:7701`)',
};
