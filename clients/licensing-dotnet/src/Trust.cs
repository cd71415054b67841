// The trust anchor: the seller's root public keys, pinned in the app at build time, and the
// key set they sign (docs/licensing-client.md, "Trust"). A lease-signing key is trusted
// only when a key set signed by a pinned root lists it (or when the app pins lease keys
// directly); nothing the server or the cache file says can add a root.
using System;
using System.Collections.Generic;

namespace Tessera.Licensing
{
    /// <summary>Why a key set cannot be trusted. Code is stable: UNSIGNED, FOREIGN_ROOT,
    /// BAD_SIGNATURE, MALFORMED, ROLLED_BACK, EXPIRED, ISSUED_IN_FUTURE.</summary>
    public class KeySetException : Exception
    {
        public string Code { get; private set; }

        public KeySetException(string code, string detail = "")
            : base(string.IsNullOrEmpty(detail) ? code : code + ": " + detail)
        {
            Code = code;
        }
    }

    public sealed class KeySet
    {
        public string Token { get; internal set; }
        public string RootKid { get; internal set; }
        public long Version { get; internal set; }
        public long IssuedAt { get; internal set; }
        public long ExpiresAt { get; internal set; }
        /// <summary>The lease keys this set vouches for.</summary>
        public KeyRing Keys { get; internal set; }
    }

    public sealed class Roots
    {
        public const string KeySetType = "tessera-key-set+jwt";

        readonly KeyRing roots = new KeyRing();

        /// <summary>Pins: base64url (no padding) of each root's 32-byte Ed25519 public key,
        /// compiled into the app (never read from the network, a file or the registry).</summary>
        public Roots(IEnumerable<string> pins)
        {
            foreach (var pin in pins)
            {
                var raw = Base64Url.TryDecode(pin);
                if (raw == null || raw.Length != Ed25519.PublicKeyBytes)
                    throw new ArgumentException("not an Ed25519 public key (32 bytes, base64url): " + pin);
                roots.Add(Jose.Thumbprint(raw), raw);
            }
            if (roots.Count == 0) throw new ArgumentException("pin at least one root public key");
        }

        /// <summary>Lease keys pinned directly (no root): only Ed25519 keys whose kid is their
        /// thumbprint.</summary>
        public static KeyRing PinnedLeaseKeys(IDictionary<string, object> jwks)
        {
            KeyRing keys;
            try
            {
                keys = LeaseKeys(Json.Array(jwks, "keys"));
            }
            catch (KeySetException error)
            {
                throw new ArgumentException(error.Message);
            }
            if (keys.Count == 0) throw new ArgumentException("no Ed25519 key to pin");
            return keys;
        }

        /// <summary>The key set among `tokens` (the key_sets of /v1/public-keys: one JWS per
        /// root that signed it) that a pinned root signed. `now` null skips the time checks
        /// (re-verifying a cached set offline, where the lease's own times decide).</summary>
        public KeySet Verify(IEnumerable<string> tokens, long? now, long minVersion = 0, int skew = Lease.SkewSeconds)
        {
            string verdict = "UNSIGNED";
            bool any = false;
            if (tokens != null)
            {
                foreach (var token in tokens)
                {
                    any = true;
                    IDictionary<string, object> header;
                    try
                    {
                        header = Jose.Header(token);
                    }
                    catch (JoseException)
                    {
                        if (verdict == "UNSIGNED") verdict = "MALFORMED";
                        continue;
                    }
                    if (Json.String(header, "alg") != "EdDSA") continue; // "none" or another: not a signature we accept
                    if (!roots.Contains(Json.String(header, "kid")))
                    {
                        if (verdict == "UNSIGNED" || verdict == "MALFORMED") verdict = "FOREIGN_ROOT";
                        continue;
                    }
                    IDictionary<string, object> claims;
                    try
                    {
                        Jose.Verify(token, roots, KeySetType, out header, out claims);
                    }
                    catch (JoseException)
                    {
                        verdict = "BAD_SIGNATURE"; // names a pinned root: wrong typ or signature
                        continue;
                    }
                    return Accept(token, Json.String(header, "kid"), claims, now, minVersion, skew);
                }
            }
            if (!any) throw new KeySetException("UNSIGNED", "no key set");
            throw new KeySetException(verdict);
        }

        KeySet Accept(string token, string rootKid, IDictionary<string, object> claims, long? now, long minVersion, int skew)
        {
            if (Json.String(claims, "typ") != "tessera-key-set" || Json.String(claims, "iss") != Lease.Issuer)
                throw new KeySetException("MALFORMED", "not a Tessera key set");
            var version = Integer(claims, "version");
            var iat = Integer(claims, "iat");
            var exp = Integer(claims, "exp");
            if (version < 1) throw new KeySetException("MALFORMED", "version must be positive");
            var keys = LeaseKeys(Json.Array(claims, "keys"));
            foreach (var kid in keys.Kids)
                if (roots.Contains(kid)) throw new KeySetException("MALFORMED", "a root must never sign leases");
            if (version < minVersion)
                throw new KeySetException("ROLLED_BACK", "version " + version + " < " + minVersion + " already seen");
            if (now.HasValue)
            {
                if (iat > now.Value + skew) throw new KeySetException("ISSUED_IN_FUTURE");
                if (now.Value >= exp) throw new KeySetException("EXPIRED");
            }
            return new KeySet { Token = token, RootKid = rootKid, Version = version, IssuedAt = iat, ExpiresAt = exp, Keys = keys };
        }

        static long Integer(IDictionary<string, object> claims, string name)
        {
            var value = Json.Integer(claims, name);
            if (!value.HasValue) throw new KeySetException("MALFORMED", name + " must be an integer");
            return value.Value;
        }

        static KeyRing LeaseKeys(object[] entries)
        {
            if (entries == null) throw new KeySetException("MALFORMED", "keys must be a list");
            var keys = new KeyRing();
            foreach (var entry in entries)
            {
                var jwk = entry as IDictionary<string, object>;
                if (jwk == null) throw new KeySetException("MALFORMED", "a key is not an object");
                if (Json.String(jwk, "kty") != "OKP" || Json.String(jwk, "crv") != "Ed25519")
                    continue; // another kind of key: not ours to use, ignored
                var raw = Base64Url.TryDecode(Json.String(jwk, "x") ?? "");
                var kid = Json.String(jwk, "kid");
                if (raw == null || raw.Length != Ed25519.PublicKeyBytes || kid != Jose.Thumbprint(raw))
                    throw new KeySetException("MALFORMED", "a key's kid is not its RFC 7638 thumbprint");
                keys.Add(kid, raw);
            }
            return keys;
        }
    }
}
