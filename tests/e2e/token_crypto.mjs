// OAuth token encryption interop with Better Auth's own helpers ("better-auth/crypto":
// symmetricEncrypt/symmetricDecrypt, what account.encryptOAuthTokens uses).
//
// Usage:
//   node token_crypto.mjs encrypt <secret> <text>  -> prints the hex value
//   node token_crypto.mjs decrypt <secret> <hex>   -> prints the text
import { symmetricDecrypt, symmetricEncrypt } from "better-auth/crypto";

const [command, key, data] = process.argv.slice(2);
if (command === "encrypt") process.stdout.write((await symmetricEncrypt({ key, data })) + "\n");
else if (command === "decrypt") process.stdout.write((await symmetricDecrypt({ key, data })) + "\n");
else {
  console.error("usage: token_crypto.mjs encrypt|decrypt <secret> <data>");
  process.exit(2);
}
