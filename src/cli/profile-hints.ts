/** Hints the CLI prints under a profile error (src/client/store/profile-store.ts raises them). */
export const PROFILE_HINTS: Readonly<Record<string, string>> = {
  'profile-missing': 'create a profile first, or point --home / CWTCH_GROUPS_HOME at an existing one',
  'profile-exists': 'open the existing profile, or choose another --home',
  'profile-foreign': 'the file is not a cwtch-groups profile; check --home / CWTCH_GROUPS_HOME',
  'profile-too-new': 'a newer cwtch-groups wrote this profile: upgrade cwtch-groups to open it',
  'profile-corrupt': 'restore the profile directory from a backup',
  'profile-locked': 'another cwtch-groups process is writing the profile; retry in a moment',
  'wrong-passphrase': 'passphrases are case-sensitive; nothing was changed',
  'empty-passphrase': 'choose a non-empty passphrase',
  'profile-record-tampered': 'the profile file was modified outside cwtch-groups; restore it from a backup',
  'profile-append-gap': 'the profile file was modified outside cwtch-groups; restore it from a backup',
  'profile-keyring-changed': 'another process changed the passphrase meanwhile; open the profile again',
};
