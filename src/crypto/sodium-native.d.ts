// Types for the parts of sodium-native we use (the package ships none).
declare module 'sodium-native' {
  type B = Uint8Array;
  export const crypto_sign_PUBLICKEYBYTES: number;
  export const crypto_sign_SECRETKEYBYTES: number;
  export const crypto_sign_SEEDBYTES: number;
  export const crypto_sign_BYTES: number;
  export const crypto_box_SEALBYTES: number;
  export const crypto_aead_xchacha20poly1305_ietf_ABYTES: number;
  export const crypto_aead_xchacha20poly1305_ietf_KEYBYTES: number;
  export const crypto_aead_xchacha20poly1305_ietf_NPUBBYTES: number;
  export const crypto_pwhash_ALG_ARGON2ID13: number;
  export const crypto_pwhash_SALTBYTES: number;
  export function randombytes_buf(buf: B): void;
  export function sodium_memzero(buf: B): void;
  export function sodium_memcmp(a: B, b: B): boolean;
  export function crypto_hash_sha256(out: B, input: B): void;
  export function crypto_hash_sha512(out: B, input: B): void;
  export function crypto_hash_sha256_init(state: B): void;
  export function crypto_hash_sha256_update(state: B, input: B): void;
  export function crypto_hash_sha256_final(state: B, out: B): void;
  export const crypto_hash_sha256_STATEBYTES: number;
  export function crypto_sign_seed_keypair(pk: B, sk: B, seed: B): void;
  export function crypto_sign_keypair(pk: B, sk: B): void;
  export function crypto_sign_detached(sig: B, msg: B, sk: B): void;
  export function crypto_sign_verify_detached(sig: B, msg: B, pk: B): boolean;
  export function crypto_sign_ed25519_pk_to_curve25519(x: B, ed: B): void;
  export function crypto_sign_ed25519_sk_to_curve25519(x: B, ed: B): void;
  export function crypto_scalarmult_base(pk: B, sk: B): void;
  export function crypto_scalarmult(out: B, sk: B, pk: B): void;
  export function crypto_box_seal(out: B, msg: B, pk: B): void;
  export function crypto_box_seal_open(out: B, ct: B, pk: B, sk: B): boolean;
  export function crypto_aead_xchacha20poly1305_ietf_encrypt(
    out: B,
    msg: B,
    ad: B | null,
    nsec: null,
    npub: B,
    key: B,
  ): number;
  export function crypto_aead_xchacha20poly1305_ietf_decrypt(
    out: B,
    nsec: null,
    ct: B,
    ad: B | null,
    npub: B,
    key: B,
  ): number;
  export function crypto_pwhash_async(
    out: B,
    passwd: B,
    salt: B,
    opslimit: number,
    memlimit: number,
    alg: number,
  ): Promise<void>;
  export function crypto_pwhash(
    out: B,
    passwd: B,
    salt: B,
    opslimit: number,
    memlimit: number,
    alg: number,
  ): void;
}
