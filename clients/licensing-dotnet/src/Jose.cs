// The little JOSE the client needs: Ed25519 JWKs, RFC 7638 thumbprints, compact JWS
// verification with the algorithm pinned to EdDSA.
using System;
using System.Collections.Generic;
using System.Text;

namespace Tessera.Licensing
{
    public class JoseException : Exception
    {
        public JoseException(string message) : base(message) { }
    }

    /// <summary>Lease-signing keys by kid: raw 32-byte Ed25519 public keys.</summary>
    public sealed class KeyRing
    {
        readonly Dictionary<string, byte[]> keys = new Dictionary<string, byte[]>(StringComparer.Ordinal);

        public static readonly KeyRing Empty = new KeyRing();

        public void Add(string kid, byte[] publicKey) { keys[kid] = publicKey; }

        public byte[] Find(string kid)
        {
            byte[] key;
            return kid != null && keys.TryGetValue(kid, out key) ? key : null;
        }

        public bool Contains(string kid) { return Find(kid) != null; }

        public ICollection<string> Kids { get { return keys.Keys; } }

        public int Count { get { return keys.Count; } }

        /// <summary>Only the Ed25519 keys of a JWKS ({"keys": [...]}); anything else is ignored.</summary>
        public static KeyRing FromJwks(IDictionary<string, object> jwks)
        {
            var ring = new KeyRing();
            var entries = Json.Array(jwks, "keys");
            if (entries == null) return ring;
            foreach (var entry in entries)
            {
                var jwk = entry as IDictionary<string, object>;
                if (jwk == null || Json.String(jwk, "kty") != "OKP" || Json.String(jwk, "crv") != "Ed25519") continue;
                var kid = Json.String(jwk, "kid");
                var raw = Base64Url.TryDecode(Json.String(jwk, "x") ?? "");
                if (kid != null && raw != null && raw.Length == Ed25519.PublicKeyBytes) ring.Add(kid, raw);
            }
            return ring;
        }
    }

    public static class Jose
    {
        /// <summary>RFC 7638 thumbprint of an Ed25519 key: the kid of every Tessera key.</summary>
        public static string Thumbprint(byte[] publicKey)
        {
            var members = "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"" + Base64Url.Encode(publicKey) + "\"}";
            return Base64Url.Encode(Bytes.Sha256(Encoding.UTF8.GetBytes(members)));
        }

        /// <summary>The (unverified) header of a compact JWS; JoseException if it is not one.</summary>
        public static IDictionary<string, object> Header(string token)
        {
            if (token == null) throw new JoseException("not a compact JWS");
            var parts = token.Split('.');
            if (parts.Length != 3) throw new JoseException("not a compact JWS");
            var raw = Base64Url.TryDecode(parts[0]);
            if (raw == null) throw new JoseException("bad base64url");
            var header = Json.TryParseObject(Utf8(raw));
            if (header == null) throw new JoseException("bad header");
            return header;
        }

        /// <summary>The header and claims of a compact JWS whose EdDSA signature verifies;
        /// JoseException otherwise (never a crypto or JSON exception).</summary>
        public static void Verify(string token, KeyRing keys, string typ,
            out IDictionary<string, object> header, out IDictionary<string, object> claims)
        {
            header = Header(token);
            // The algorithm is pinned: the token never chooses (no "none", no HMAC confusion).
            if (Json.String(header, "alg") != "EdDSA") throw new JoseException("alg must be EdDSA");
            if (typ != null && Json.String(header, "typ") != typ) throw new JoseException("typ must be " + typ);
            var key = keys.Find(Json.String(header, "kid"));
            if (key == null) throw new JoseException("unknown kid");
            var parts = token.Split('.');
            var signature = Base64Url.TryDecode(parts[2]);
            if (signature == null) throw new JoseException("bad base64url");
            if (signature.Length != Ed25519.SignatureBytes) throw new JoseException("signature is not 64 bytes");
            if (!Ed25519.Verify(key, Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]), signature))
                throw new JoseException("bad signature");
            var payload = Base64Url.TryDecode(parts[1]);
            claims = payload == null ? null : Json.TryParseObject(Utf8(payload));
            if (claims == null) throw new JoseException("bad payload");
        }

        static string Utf8(byte[] raw)
        {
            try
            {
                return new UTF8Encoding(false, true).GetString(raw);
            }
            catch (ArgumentException)
            {
                return null;
            }
        }
    }
}
