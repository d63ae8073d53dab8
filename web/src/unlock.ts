/**
 * The page of a locked app (src/app/unlock.ts): unlock the profile with its passphrase, or create
 * the profile when there is none yet. The passphrase goes in a POST body to this app only, never
 * in an address; the fields are cleared once it is sent.
 */

interface LockState {
  locked: boolean;
  profileExists: boolean;
  home: string | null;
}

function byId<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`missing #${id}`);
  return e as T;
}

async function post(path: string, body: unknown): Promise<void> {
  const res = await fetch(`/api/${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (res.ok) return;
  const data = (await res.json()) as { error?: { reason: string; message: string } };
  const err = new Error(data.error?.message ?? `HTTP ${res.status}`);
  err.name = data.error?.reason ?? 'http';
  throw err;
}

/** Resolves once the profile is open: at once when it already is, else after the person unlocks it. */
export async function unlockFirst(): Promise<void> {
  const res = await fetch('/api/lock', { credentials: 'same-origin' });
  const lock = (await res.json()) as LockState;
  if (!lock.locked) return;
  document.body.classList.add('locked');
  const section = byId('unlock');
  const error = byId('unlock-error');
  section.hidden = false;
  byId('unlock-home').textContent = lock.home ?? '';
  byId('unlock-form').hidden = !lock.profileExists;
  byId('profile-form').hidden = lock.profileExists;
  (lock.profileExists ? byId('unlock-passphrase') : byId('profile-name')).focus();
  return new Promise<void>((resolve) => {
    const done = () => {
      for (const id of ['unlock-passphrase', 'profile-passphrase', 'profile-again']) {
        byId<HTMLInputElement>(id).value = '';
      }
      section.hidden = true;
      document.body.classList.remove('locked');
      resolve();
    };
    const submit = (formId: string, send: () => Promise<void>) => {
      const form = byId<HTMLFormElement>(formId);
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const button = form.querySelector('button');
        if (button !== null) button.disabled = true;
        error.textContent = formId === 'unlock-form' ? 'opening the profile…' : 'creating the profile…';
        send()
          .then(done)
          .catch((e: unknown) => {
            const err = e instanceof Error ? e : new Error(String(e));
            error.textContent = err.message;
            // A weak passphrase may still be chosen, knowingly (docs/CLI.md "Passphrases").
            if (err.name === 'weak-passphrase') byId('profile-weak').hidden = false;
          })
          .finally(() => {
            if (button !== null) button.disabled = false;
          });
      });
    };
    submit('unlock-form', async () => {
      const field = byId<HTMLInputElement>('unlock-passphrase');
      const passphrase = field.value;
      field.value = '';
      await post('unlock', { passphrase });
    });
    submit('profile-form', () =>
      post('profile', {
        name: byId<HTMLInputElement>('profile-name').value,
        passphrase: byId<HTMLInputElement>('profile-passphrase').value,
        again: byId<HTMLInputElement>('profile-again').value,
        weakOk: byId<HTMLInputElement>('profile-weak-ok').checked,
      }),
    );
  });
}
