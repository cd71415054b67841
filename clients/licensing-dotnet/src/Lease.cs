// Offline verification of a lease (docs/licensing-client.md, "The lease").
using System;
using System.Collections.Generic;

namespace Tessera.Licensing
{
    /// <summary>Why a lease cannot be trusted. Code is stable: MALFORMED, UNKNOWN_KEY,
    /// BAD_SIGNATURE, WRONG_ISSUER, ISSUED_IN_FUTURE, EXPIRED, FINGERPRINT_MISMATCH, NOT_ACTIVE;
    /// from the cache: NO_LEASE, CACHE_TAMPERED, CLOCK_ROLLED_BACK.</summary>
    public class LeaseException : Exception
    {
        public string Code { get; private set; }

        public LeaseException(string code, string detail = "")
            : base(string.IsNullOrEmpty(detail) ? code : code + ": " + detail)
        {
            Code = code;
        }
    }

    public sealed class Lease
    {
        public const string Issuer = "tessera-licensing";
        /// <summary>How far this machine's clock may be off the server's without complaint.</summary>
        public const int SkewSeconds = 300;

        public string Token { get; private set; }
        public string Kid { get; private set; }
        public string LicenseId { get; private set; }
        public string AccountId { get; private set; }
        public string Product { get; private set; }
        public IList<string> Entitlements { get; private set; }
        public string Fingerprint { get; private set; }
        public string Status { get; private set; }
        public long IssuedAt { get; private set; }
        public long RenewAt { get; private set; }
        public long ExpiresAt { get; private set; }
        public long? LicenseExpiresAt { get; private set; }

        /// <summary>Past renew_at: still valid, but the app should call home (and may warn).</summary>
        public bool NeedsRenewal(long now) { return now >= RenewAt; }

        /// <summary>The lease, if its signature verifies with `keys` and it holds for this
        /// machine at `now` (unix seconds); LeaseException otherwise.</summary>
        public static Lease Verify(string token, KeyRing keys, string fingerprint, long now, int skew = SkewSeconds)
        {
            IDictionary<string, object> header, claims;
            try
            {
                Jose.Verify(token, keys, null, out header, out claims);
            }
            catch (JoseException error)
            {
                string code = error.Message == "unknown kid" ? "UNKNOWN_KEY"
                    : error.Message == "bad signature" ? "BAD_SIGNATURE" : "MALFORMED";
                throw new LeaseException(code, error.Message);
            }
            if (Json.String(claims, "iss") != Issuer) throw new LeaseException("WRONG_ISSUER");
            var lease = FromClaims(token, Json.String(header, "kid"), claims);
            if (lease.IssuedAt > now + skew)
                throw new LeaseException("ISSUED_IN_FUTURE", "the lease is dated after this machine's clock");
            if (now >= lease.ExpiresAt) throw new LeaseException("EXPIRED");
            if (lease.Fingerprint != fingerprint) throw new LeaseException("FINGERPRINT_MISMATCH");
            if (lease.Status != "active") throw new LeaseException("NOT_ACTIVE");
            return lease;
        }

        static Lease FromClaims(string token, string kid, IDictionary<string, object> c)
        {
            var entitlements = Json.Array(c, "entitlements");
            var iat = Json.Integer(c, "iat");
            var renew = Json.Integer(c, "renew_at");
            var exp = Json.Integer(c, "exp");
            var licenseEnd = Json.Get(c, "license_expires_at");
            var lease = new Lease
            {
                Token = token,
                Kid = kid,
                LicenseId = Json.String(c, "license_id"),
                AccountId = Json.String(c, "account_id"),
                Product = Json.String(c, "product"),
                Fingerprint = Json.String(c, "fingerprint"),
                Status = Json.String(c, "status"),
                LicenseExpiresAt = licenseEnd == null ? null : Json.AsInteger(licenseEnd),
            };
            if (lease.LicenseId == null || lease.AccountId == null || lease.Product == null
                || lease.Fingerprint == null || lease.Status == null || entitlements == null
                || !iat.HasValue || !renew.HasValue || !exp.HasValue
                || (licenseEnd != null && !lease.LicenseExpiresAt.HasValue))
                throw new LeaseException("MALFORMED", "missing or mistyped claim");
            var list = new List<string>();
            foreach (var e in entitlements)
            {
                var s = e as string;
                if (s == null) throw new LeaseException("MALFORMED", "missing or mistyped claim");
                list.Add(s);
            }
            lease.Entitlements = list.AsReadOnly();
            lease.IssuedAt = iat.Value;
            lease.RenewAt = renew.Value;
            lease.ExpiresAt = exp.Value;
            return lease;
        }
    }
}
