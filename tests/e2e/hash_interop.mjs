// Password-hash interop with Better Auth's own helpers (npm better-auth, export "better-auth/crypto",
// which re-exports @better-auth/utils/password: scrypt N=16384 r=16 p=1 dkLen=64, NFKC-normalised
// password, format "<16-byte salt hex>:<64-byte key hex>", the salt hex string itself is the salt).
//
// Usage:
//   node hash_interop.mjs hash <password>           -> prints the hash
//   node hash_interop.mjs verify <hash> <password>  -> prints true or false (exit 0 either way;
//                                                      a malformed hash prints false, reason on stderr)
import { hashPassword, verifyPassword } from "better-auth/crypto";

const [command, ...args] = process.argv.slice(2);

if (command === "hash" && args.length === 1) {
  process.stdout.write((await hashPassword(args[0])) + "\n");
} else if (command === "verify" && args.length === 2) {
  let ok = false;
  try {
    ok = (await verifyPassword({ hash: args[0], password: args[1] })) === true;
  } catch (err) {
    console.error(`verifyPassword threw: ${err && err.message ? err.message : err}`);
  }
  process.stdout.write(ok ? "true\n" : "false\n");
} else {
  console.error("usage: node hash_interop.mjs hash <password> | node hash_interop.mjs verify <hash> <password>");
  process.exitCode = 2;
}
