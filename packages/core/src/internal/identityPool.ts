/**
 * `IdentityPool.make`: one pool per endpoint whose connections carry their
 * bound identity, assembled in `pool/identityPool.ts` from the one-job
 * modules under `pool/`.
 */
export { make } from "./pool/identityPool.ts"
