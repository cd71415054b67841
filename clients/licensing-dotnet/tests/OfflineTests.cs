// Offline verification with the published vectors: leases, key sets against pinned roots,
// cache records, response signatures; and the store's integrity and clock-rollback guards.
// The same checks as the reference client's tests/test_offline.py.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using NUnit.Framework;
using Tessera.Licensing;

namespace Tessera.Licensing.Tests
{
    [TestFixture]
    public class OfflineTests : InFolder
    {
        static string Lease(string name) { return (string)Vectors.Named("leases", name)["lease"]; }

        static string ValidSet { get { return Vectors.Strings(Vectors.Named("key_sets", "valid")["key_sets"])[0]; } }

        static string Check(string lease, long? now = null, string fingerprint = null, KeyRing keys = null)
        {
            try
            {
                Tessera.Licensing.Lease.Verify(lease, keys ?? Vectors.LeaseKeys, fingerprint ?? Vectors.Fingerprint, now ?? Vectors.Now);
            }
            catch (LeaseException error)
            {
                return error.Code;
            }
            return "VALID";
        }

        public static IEnumerable<string> LeaseNames() { return Vectors.Names("leases"); }
        public static IEnumerable<string> KeySetNames() { return Vectors.Names("key_sets"); }
        public static IEnumerable<string> CacheNames() { return Vectors.Names("cache"); }

        [Test]
        public void TheVectorsAreThereToCheck()
        {
            // A missing or emptied block must fail, not pass with no cases.
            Assert.That(new List<string>(LeaseNames()).Count, Is.GreaterThanOrEqualTo(7));
            Assert.That(new List<string>(KeySetNames()).Count, Is.GreaterThanOrEqualTo(12));
            Assert.That(new List<string>(CacheNames()).Count, Is.GreaterThanOrEqualTo(6));
        }

        [TestCaseSource("LeaseNames")]
        public void EachLeaseVectorVerifiesOrFailsAsDocumented(string name)
        {
            Assert.AreEqual(Vectors.Named("leases", name)["expect"], Check(Lease(name)));
        }

        [Test]
        public void AValidLeaseFailsForAnotherMachineAndAfterItsExpiry()
        {
            var exp = Json.Integer(Vectors.Payload, "exp").Value;
            Assert.AreEqual("FINGERPRINT_MISMATCH", Check(Lease("valid"), fingerprint: "another-machine"));
            Assert.AreEqual("EXPIRED", Check(Lease("valid"), now: exp));
            Assert.AreEqual("VALID", Check(Lease("valid"), now: exp - 1));
        }

        [Test]
        public void ALeaseCarriesItsClaims()
        {
            var lease = Tessera.Licensing.Lease.Verify(Lease("valid"), Vectors.LeaseKeys, Vectors.Fingerprint, Vectors.Now);
            Assert.AreEqual(Json.String(Vectors.Payload, "license_id"), lease.LicenseId);
            Assert.AreEqual(new[] { "chartgpt.core" }, new List<string>(lease.Entitlements).ToArray());
            Assert.AreEqual(Json.Integer(Vectors.Payload, "renew_at").Value, lease.RenewAt);
            Assert.IsNull(lease.LicenseExpiresAt);
            Assert.IsFalse(lease.NeedsRenewal(Vectors.Now));
            Assert.IsTrue(lease.NeedsRenewal(lease.RenewAt));
        }

        [Test]
        public void ALeaseNamingAnUnknownKeyOrNoSignatureIsRefused()
        {
            Assert.AreEqual("UNKNOWN_KEY", Check(Lease("valid"), keys: KeyRing.Empty));
            Assert.AreEqual("MALFORMED", Check("e30.e30."));
        }

        [TestCase("")]
        [TestCase("AA")]
        [TestCase("!!!!")]
        [TestCase("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
        public void AShortLongOrGarbledSignatureIsTheClientsOwnError(string sig)
        {
            var parts = Lease("valid").Split('.');
            var verdict = Check(parts[0] + "." + parts[1] + "." + sig);
            Assert.That(verdict, Is.EqualTo("MALFORMED").Or.EqualTo("BAD_SIGNATURE"));
            foreach (var token in new[] { "", ".", "a.b", null })
                Assert.AreNotEqual("VALID", Check(token));
        }

        [Test]
        public void AnotherAlgorithmIsRefusedWhateverTheSignature()
        {
            var parts = Lease("valid").Split('.');
            var none = Base64Url.Encode(Encoding.UTF8.GetBytes("{\"alg\":\"none\",\"kid\":\"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k\"}"));
            Assert.AreEqual("MALFORMED", Check(none + "." + parts[1] + "." + parts[2]));
            Assert.AreEqual("MALFORMED", Check(none + "." + parts[1] + "."));
        }

        static string KeySetVerdict(string name)
        {
            var vector = Vectors.Named("key_sets", name);
            try
            {
                new Roots(Vectors.Strings(vector["pins"])).Verify(
                    Vectors.Strings(vector["key_sets"]), Vectors.Now, Json.Integer(vector, "min_version").Value);
            }
            catch (KeySetException error)
            {
                return error.Code;
            }
            return "VALID";
        }

        [TestCaseSource("KeySetNames")]
        public void EachKeySetVectorIsAcceptedOrRefusedAsDocumented(string name)
        {
            Assert.AreEqual(Vectors.Named("key_sets", name)["expect"], KeySetVerdict(name));
        }

        [Test]
        public void AnAcceptedKeySetVouchesForTheLeaseKeyAndNothingElse()
        {
            var set = new Roots(Vectors.Pins).Verify(new[] { ValidSet }, Vectors.Now);
            Assert.AreEqual(2, set.Version);
            Assert.AreEqual(new[] { "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" }, new List<string>(set.Keys.Kids).ToArray());
            Assert.AreEqual("VALID", Check(Lease("valid"), keys: set.Keys));
        }

        [Test]
        public void PinsAreCheckedAndARootIsRequired()
        {
            var none = Assert.Throws<ArgumentException>(() => new Roots(new string[0]));
            StringAssert.Contains("pin at least one", none.Message);
            var bad = Assert.Throws<ArgumentException>(() => new Roots(new[] { "not-a-key" }));
            StringAssert.Contains("not an Ed25519 public key", bad.Message);
        }

        [Test]
        public void AKidIsTheRfc7638ThumbprintOfItsKey()
        {
            // RFC 8037 §A.3: the thumbprint of RFC 8032's TEST 1 key.
            var x = Base64Url.TryDecode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
            Assert.AreEqual("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", Jose.Thumbprint(x));
        }

        static Vouched Vouch(string token)
        {
            try
            {
                var set = new Roots(Vectors.Pins).Verify(token == null ? new string[0] : new[] { token }, null);
                return new Vouched(set.Keys, set.ExpiresAt);
            }
            catch (KeySetException error)
            {
                throw new LeaseException("CACHE_TAMPERED", error.Code);
            }
        }

        string CacheFile { get { return Path.Combine(folder, "lease.json"); } }

        string CacheVerdict(string recordJson, string machine)
        {
            File.WriteAllText(CacheFile, recordJson);
            try
            {
                new LeaseStore(CacheFile, machine).Check(Vectors.Fingerprint, Vectors.Now, Vouch);
            }
            catch (LeaseException error)
            {
                if (error.Code == "CACHE_TAMPERED")
                    Assert.IsFalse(File.Exists(CacheFile), "a cache that fails its integrity check is discarded");
                return error.Code;
            }
            return "VALID";
        }

        static IDictionary<string, object> Record(string name)
        {
            return new Dictionary<string, object>((IDictionary<string, object>)Vectors.Named("cache", name)["record"]);
        }

        [TestCaseSource("CacheNames")]
        public void EachCacheVectorHoldsOrIsRefusedAsDocumented(string name)
        {
            var verdict = CacheVerdict(Json.Canonical(Record(name)), Vectors.MachineId);
            Assert.AreEqual(Vectors.Named("cache", name)["expect"], verdict);
        }

        [Test]
        public void ACacheCopiedToAnotherMachineIsDiscarded()
        {
            Assert.AreEqual("CACHE_TAMPERED", CacheVerdict(Json.Canonical(Record("valid")), "machine-b"));
        }

        [Test]
        public void LastSeenZeroMissingOrMistypedDoesNotPass()
        {
            foreach (var edit in new object[] { 0, null, true, "1767308400", 1.5m })
            {
                var record = Record("valid");
                record["local_high_water"] = edit;
                Assert.AreEqual("CACHE_TAMPERED", CacheVerdict(Json.Canonical(record), Vectors.MachineId), "" + edit);
            }
            var trimmed = Record("valid");
            trimmed.Remove("local_high_water");
            Assert.AreEqual("CACHE_TAMPERED", CacheVerdict(Json.Canonical(trimmed), Vectors.MachineId));
            Assert.AreEqual("CACHE_TAMPERED", CacheVerdict("not json", Vectors.MachineId));
        }

        LeaseStore Stored()
        {
            var store = new LeaseStore(CacheFile, "m-1");
            var lease = Tessera.Licensing.Lease.Verify(Lease("valid"), Vectors.LeaseKeys, Vectors.Fingerprint, Vectors.Now);
            store.Save(lease, ValidSet, 2, Vectors.Now);
            return store;
        }

        [Test]
        public void TheStoreNoticesAClockSetBack()
        {
            var store = Stored();
            var now = Vectors.Now;
            Assert.AreEqual(Json.String(Vectors.Payload, "license_id"), store.Check(Vectors.Fingerprint, now + 3600, Vouch).LicenseId);
            var rolled = Assert.Throws<LeaseException>(() => store.Check(Vectors.Fingerprint, now - 43200, Vouch));
            Assert.AreEqual("CLOCK_ROLLED_BACK", rolled.Code);
            // The mark of the check at now + 3600 holds: just before it is a rollback too.
            var again = Assert.Throws<LeaseException>(() => store.Check(Vectors.Fingerprint, now + 3600 - 301, Vouch));
            Assert.AreEqual("CLOCK_ROLLED_BACK", again.Code);
            Assert.AreEqual(2, store.AcceptedVersion());
            store.Clear();
            var gone = Assert.Throws<LeaseException>(() => store.Check(Vectors.Fingerprint, now, Vouch));
            Assert.AreEqual("NO_LEASE", gone.Code);
        }

        [Test]
        public void AnEditToAnyFieldDiscardsTheCache()
        {
            var store = Stored();
            var edits = new Dictionary<string, object>
            {
                { "local_high_water", 1 },
                { "signed_high_water", 1 },
                { "key_set_version", 0 },
                { "lease", Lease("tampered") },
                { "key_set", Vectors.Strings(Vectors.Named("key_sets", "rotated_root_pinned")["key_sets"])[0] },
                { "mac", new string('0', 64) },
            };
            var record = Json.TryParseObject(File.ReadAllText(CacheFile));
            foreach (var edit in edits)
            {
                var edited = new Dictionary<string, object>(record);
                edited[edit.Key] = edit.Value;
                File.WriteAllText(CacheFile, Json.Canonical(edited));
                var tampered = Assert.Throws<LeaseException>(() => store.Check(Vectors.Fingerprint, Vectors.Now, Vouch));
                Assert.AreEqual("CACHE_TAMPERED", tampered.Code, edit.Key);
                Assert.IsFalse(File.Exists(CacheFile));
                Assert.AreEqual(0, store.AcceptedVersion());
            }
        }

        [Test]
        public void TheVersionFloorOnlyGrows()
        {
            var store = Stored();
            var lease = store.Check(Vectors.Fingerprint, Vectors.Now, Vouch);
            store.Save(lease, ValidSet, 1, Vectors.Now);
            Assert.AreEqual(2, store.AcceptedVersion());
        }

        [Test]
        public void ARecordThisClientWritesIsTheReferenceFormat()
        {
            // Written for the vectors' machine at the vectors' times, the record (MAC included)
            // is the one the reference client wrote: either client reads the other's cache.
            var store = new LeaseStore(CacheFile, Vectors.MachineId);
            var lease = Tessera.Licensing.Lease.Verify(Lease("valid"), Vectors.LeaseKeys, Vectors.Fingerprint, Vectors.Now);
            store.Save(lease, ValidSet, 2, lease.IssuedAt);
            store.Check(Vectors.Fingerprint, 1767308400, Vouch);
            var written = Json.TryParseObject(File.ReadAllText(CacheFile));
            Assert.AreEqual(Json.Canonical(Record("valid")), Json.Canonical(written));
        }

        [Test]
        public void ATypoInAKeyIsCaughtBeforeAnyCall()
        {
            const string payload = "0123456789ABCDEFGHJKMNPQ";
            var key = payload + KeyFormat.CheckSymbol(payload);
            Assert.IsTrue(KeyFormat.IsWellFormed(key));
            Assert.IsTrue(KeyFormat.IsWellFormed(KeyFormat.Display(key).ToLowerInvariant()));
            Assert.AreEqual(key, KeyFormat.Normalise(" " + KeyFormat.Display(key).Replace('0', 'O') + " "));
            Assert.IsFalse(KeyFormat.IsWellFormed(key.Substring(0, 3) + (key[3] != '1' ? "1" : "2") + key.Substring(4)));
            Assert.IsFalse(KeyFormat.IsWellFormed(key.Substring(0, 5) + key[6] + key[5] + key.Substring(7)));
            Assert.IsFalse(KeyFormat.IsWellFormed(key.Substring(1)));
            Assert.IsFalse(KeyFormat.IsWellFormed(null));
        }

        static IDictionary<string, object> Signed { get { return (IDictionary<string, object>)Vectors.All["response_signature"]; } }

        static long VerifySigned(string body, string path = null, long? now = null, KeyRing keys = null)
        {
            var s = Signed;
            return ResponseSignature.Verify((string)s["header"], (string)s["method"], path ?? (string)s["path"],
                Encoding.UTF8.GetBytes(body), keys ?? Vectors.LeaseKeys, now ?? Vectors.Now);
        }

        [Test]
        public void TheSignedAnswerVectorVerifies()
        {
            var s = Signed;
            var input = ResponseSignature.SigningInput((string)s["method"], (string)s["path"], Vectors.Now, Encoding.UTF8.GetBytes((string)s["body"]));
            Assert.AreEqual((string)s["signing_input"], Encoding.UTF8.GetString(input));
            Assert.AreEqual(Vectors.Now, VerifySigned((string)s["body"]));
        }

        [Test]
        public void AnEditedMovedStaleOrForeignAnswerIsRejected()
        {
            var body = (string)Signed["body"];
            Assert.Throws<ResponseRejectedException>(() => VerifySigned(body.Replace("n-0001", "n-0002")));
            Assert.Throws<ResponseRejectedException>(() => VerifySigned(body, path: "/v1/licenses/activate"));
            Assert.Throws<ResponseRejectedException>(() => VerifySigned(body, now: Vectors.Now + 301));
            Assert.Throws<UnknownKeyException>(() => VerifySigned(body, keys: KeyRing.Empty));
            Assert.Throws<ResponseRejectedException>(() => ResponseSignature.Verify(null, "POST", "/", new byte[0], Vectors.LeaseKeys, Vectors.Now));
        }

        [Test]
        public void LibsodiumVerifiesRfc8032Test1AndRefusesItEdited()
        {
            var key = Base64Url.TryDecode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
            var sig = new byte[64];
            const string hex = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
            for (int i = 0; i < 64; i++) sig[i] = Convert.ToByte(hex.Substring(2 * i, 2), 16);
            Assert.IsTrue(Ed25519.Verify(key, new byte[0], sig));
            Assert.IsFalse(Ed25519.Verify(key, new byte[] { 0 }, sig));
            sig[0] ^= 1;
            Assert.IsFalse(Ed25519.Verify(key, new byte[0], sig));
        }

        [Test]
        public void Ed25519RefusesWrongLengthsWithoutThrowing()
        {
            var key = Base64Url.TryDecode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
            Assert.IsFalse(Ed25519.Verify(key, new byte[0], new byte[63]));
            Assert.IsFalse(Ed25519.Verify(new byte[31], new byte[0], new byte[64]));
            Assert.IsFalse(Ed25519.Verify(key, new byte[0], new byte[64]));
            Assert.IsFalse(Ed25519.Verify(null, null, null));
        }
    }
}
